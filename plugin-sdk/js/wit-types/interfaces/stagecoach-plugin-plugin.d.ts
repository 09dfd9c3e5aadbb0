/// <reference path="./stagecoach-plugin-types.d.ts" />
declare module 'stagecoach:plugin/plugin@0.4.0' {
  /**
   * Describes the plugin.
   */
  export function describe(): Info;
  /**
   * An exit criterion: is it met for this prospect?
   */
  export function evaluate(input: Input): Verdict;
  /**
   * A methodology checklist: each item done or not, with evidence.
   */
  export function checklist(input: Input): Array<ChecklistItem>;
  /**
   * A metric: fold over prospects and transitions into named values.
   */
  export function metric(input: MetricInput): Array<MetricValue>;
  export type Info = import('stagecoach:plugin/types@0.4.0').Info;
  export type Input = import('stagecoach:plugin/types@0.4.0').Input;
  export type Verdict = import('stagecoach:plugin/types@0.4.0').Verdict;
  export type ChecklistItem = import('stagecoach:plugin/types@0.4.0').ChecklistItem;
  export type MetricInput = import('stagecoach:plugin/types@0.4.0').MetricInput;
  export type MetricValue = import('stagecoach:plugin/types@0.4.0').MetricValue;
}
