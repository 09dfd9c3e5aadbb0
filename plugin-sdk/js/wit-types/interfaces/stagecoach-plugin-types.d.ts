declare module 'stagecoach:plugin/types@0.3.0' {
  /**
   * A piece of the input's `text`: `len` bytes starting at byte `start`.
   */
  export interface Span {
    start: number,
    len: number,
  }
  /**
   * A run of the input's `entries`: `len` of them from index `start`.
   */
  export interface Range {
    start: number,
    len: number,
  }
  /**
   * A field value or config value: text, a number or a yes/no answer.
   */
  export type Value = ValueText | ValueNumber | ValueBoolean;
  export interface ValueText {
    tag: 'text',
    val: Span,
  }
  export interface ValueNumber {
    tag: 'number',
    val: number,
  }
  export interface ValueBoolean {
    tag: 'boolean',
    val: boolean,
  }
  /**
   * A named value (a prospect field, a config entry, an activity datum).
   */
  export interface Entry {
    name: Span,
    value: Value,
  }
  /**
   * Where a prospect is.
   * # Variants
   * 
   * ## `"open"`
   * 
   * ## `"won"`
   * 
   * ## `"lost"`
   */
  export type Status = 'open' | 'won' | 'lost';
  /**
   * Who performed an activity.
   * # Variants
   * 
   * ## `"prospect"`
   * 
   * ## `"rep"`
   */
  export type Actor = 'prospect' | 'rep';
  /**
   * One entry of the prospect's activity log.
   */
  export interface Activity {
    /**
     * What happened (`replied`, `demo_attended`, ...).
     */
    kind: Span,
    /**
     * Who did it.
     */
    actor: Actor,
    /**
     * When, in UTC milliseconds.
     */
    at: bigint,
    /**
     * The activity's scalar data.
     */
    data: Range,
  }
  /**
   * The prospect being evaluated.
   */
  export interface Prospect {
    id: bigint,
    name: Span,
    company?: Span,
    owner?: Span,
    /**
     * The current stage id.
     */
    stage: Span,
    status: Status,
    createdAt: bigint,
    /**
     * When the prospect entered its current stage.
     */
    stageEnteredAt: bigint,
    fields: Range,
    /**
     * The most recent activities, oldest first (bounded by the host).
     */
    activities: Array<Activity>,
    /**
     * True when older activities were left out to respect the input limit.
     */
    activitiesTruncated: boolean,
  }
  /**
   * Everything an exit criterion or checklist is evaluated on.
   */
  export interface Input {
    /**
     * The text every `span` of this input points into.
     */
    text: string,
    /**
     * The entries every `range` of this input points into.
     */
    entries: Array<Entry>,
    prospect: Prospect,
    /**
     * The evaluation time, given by the host.
     */
    now: bigint,
    /**
     * The criterion's or plugin's `config` table from `process.toml`.
     */
    config: Range,
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
   * A prospect as a metric plugin sees it.
   */
  export interface ProspectSummary {
    id: bigint,
    owner?: Span,
    stage: Span,
    status: Status,
    createdAt: bigint,
    closedAt?: bigint,
    /**
     * The stage's win probability from `process.toml`, if set.
     */
    stageProbability?: number,
    /**
     * The prospect's fields.
     */
    fields: Range,
  }
  /**
   * A stage change, for metric plugins.
   */
  export interface Transition {
    prospect: bigint,
    from?: Span,
    to: Span,
    at: bigint,
    /**
     * `created`, `advanced`, `forced`, `won`, `lost`, ...
     */
    kind: Span,
  }
  /**
   * What a metric plugin folds over.
   */
  export interface MetricInput {
    /**
     * The text every `span` of this input points into.
     */
    text: string,
    /**
     * The entries every `range` of this input points into.
     */
    entries: Array<Entry>,
    now: bigint,
    config: Range,
    prospects: Array<ProspectSummary>,
    transitions: Array<Transition>,
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
