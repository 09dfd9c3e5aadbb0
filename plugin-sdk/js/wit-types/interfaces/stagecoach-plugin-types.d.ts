declare module 'stagecoach:plugin/types@0.4.0' {
  /**
   * Everything an exit criterion or checklist is evaluated on.
   */
  export interface Input {
    /**
     * The text every span of this input points into.
     */
    text: string,
    /**
     * The prospect, its activities, `now` and the config (see above).
     */
    packed: Uint8Array,
  }
  /**
   * An exit criterion's answer.
   */
  export interface Verdict {
    met: boolean,
    /**
     * Why, in words a sales rep understands.
     */
    reason: string,
  }
  /**
   * One methodology checklist item.
   */
  export interface ChecklistItem {
    /**
     * Stable id (`metrics`, `economic-buyer`).
     */
    id: string,
    /**
     * What the item asks ("Economic buyer identified").
     */
    label: string,
    done: boolean,
    /**
     * What shows it is done, or what is missing.
     */
    evidence: string,
  }
  /**
   * What a metric plugin folds over.
   */
  export interface MetricInput {
    /**
     * The text every span of this input points into.
     */
    text: string,
    /**
     * The prospects, transitions, `now` and the config (see above).
     */
    packed: Uint8Array,
  }
  /**
   * One named result of a metric plugin.
   */
  export interface MetricValue {
    /**
     * What the number is (`forecast`).
     */
    name: string,
    /**
     * Which slice it is for (`owner=maria`), empty for the total.
     */
    label: string,
    value: number,
  }
  /**
   * What a plugin provides.
   * # Variants
   * 
   * ## `"criterion"`
   * 
   * ## `"checklist"`
   * 
   * ## `"metric"`
   */
  export type Capability = 'criterion' | 'checklist' | 'metric';
  /**
   * A plugin's self-description.
   */
  export interface Info {
    /**
     * The plugin's name.
     */
    name: string,
    /**
     * A sentence on what it checks or computes.
     */
    description: string,
    provides: Array<Capability>,
    /**
     * Whether `evaluate` and `checklist` read the prospect's activity
     * log. When false the host leaves it out (and sets
     * `activities-truncated`), which makes each call cheaper.
     */
    readsActivities: boolean,
  }
}
