// Types of ./node-version.mjs (plain JavaScript, so that bin/sfc.js can run it before tsx).

export type Version = [major: number, minor: number, patch: number];
export function requiredNodeVersion(): Version;
export function versionText(version: Version): string;
export function nodeVersionProblem(
  found: string,
  required?: Version,
  hasCrc32?: boolean,
): string | null;
export function exitIfUnsupportedNode(found?: string): void;
