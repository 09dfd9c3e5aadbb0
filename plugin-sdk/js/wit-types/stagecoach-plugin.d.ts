/// <reference path="./interfaces/stagecoach-plugin-host.d.ts" />
/// <reference path="./interfaces/stagecoach-plugin-plugin.d.ts" />
/// <reference path="./interfaces/stagecoach-plugin-types.d.ts" />
declare module 'stagecoach:plugin/stagecoach-plugin@0.4.0' {
  export type * as StagecoachPluginHost040 from 'stagecoach:plugin/host@0.4.0'; // import stagecoach:plugin/host@0.4.0
  export type * as StagecoachPluginTypes040 from 'stagecoach:plugin/types@0.4.0'; // import stagecoach:plugin/types@0.4.0
  export * as plugin from 'stagecoach:plugin/plugin@0.4.0'; // export stagecoach:plugin/plugin@0.4.0
}
