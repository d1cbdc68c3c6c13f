// The contract between `npm run claims` and the figures that README.md and docs/*.md state.
// A group measures a set of numbers in one computation (one script, one run); each claim ties one
// of those numbers to the exact text in a document that states it, so editing either one alone
// makes the claim fail.

export interface Claim {
  /** Key into the group's measured record. */
  key: string;
  /** Document that states the figure, relative to the project root ('README.md', 'docs/shift.md'). */
  doc: string;
  /** Exact substring of the document that states the figure (checked to still be there). */
  text: string;
  /** The value as the document states it. */
  stated: number;
  /** Allowed |measured - stated| (absolute), after `relative` scaling when set. */
  tolerance: number;
  /** When true, tolerance is relative to |stated|. */
  relative?: boolean;
  /** Why this tolerance: e.g. 'seeded and deterministic; the doc rounds to 3 decimals'. */
  why: string;
}

export interface ClaimGroup {
  /** Short id, e.g. 'organism-tasks'. */
  name: string;
  /** The script in this repo that produces these numbers (shown per claim). */
  script: string;
  /** Part of the fast subset that CI runs (seconds, not minutes). */
  fast: boolean;
  /** Runs the computation once and returns every number the claims read, by key. */
  measure(): Promise<Record<string, number>>;
  claims: Claim[];
}
