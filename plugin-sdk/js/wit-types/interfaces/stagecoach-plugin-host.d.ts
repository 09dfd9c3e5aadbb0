declare module 'stagecoach:plugin/host@0.4.0' {
  /**
   * Appends one byte of UTF-8 to the line being logged.
   */
  export function logByte(b: number): void;
  /**
   * Writes the line built by `log-byte` to the daemon's log, tagged with
   * the plugin's name.
   * 
   * Why bytes and not one `string` parameter: an import that takes a
   * string needs the plugin's memory, which forces two extra core
   * instances (a shim and its fixup) into every instantiation; scalar
   * parameters do not. Logging is rare, instantiation is every call.
   */
  export function logEnd(level: Level): void;
  /**
   * Log levels.
   * # Variants
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type Level = 'debug' | 'info' | 'warn' | 'error';
}
