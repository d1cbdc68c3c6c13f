// Messages for data that failed a zod schema: where in the value and what was wrong, so an error
// can name the file and the fields at fault.

import type { z } from 'zod';

/**
 * "path: message; ..." for a failed parse. `root` names the whole value when the problem is at
 * its top; `limit` keeps the first few problems of a long list.
 */
export function describeIssues(
  error: z.ZodError,
  options: { root?: string; limit?: number } = {},
): string {
  const root = options.root ?? '(root)';
  return error.issues
    .slice(0, options.limit)
    .map((i) => `${i.path.join('.') || root}: ${i.message}`)
    .join('; ');
}
