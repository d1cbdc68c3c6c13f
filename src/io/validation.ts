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

/**
 * A value as short JSON-like text for an error message. Never throws and stays cheap on hostile
 * values (deep nesting, huge arrays, keys like toString): it looks two levels deep at most.
 */
export function briefJson(value: unknown, max = 80): string {
  const show = (v: unknown, depth: number): string => {
    if (v === null || typeof v !== 'object')
      return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
        ? JSON.stringify(v).slice(0, max + 1)
        : typeof v;
    if (depth >= 2) return Array.isArray(v) ? '[...]' : '{...}';
    if (Array.isArray(v)) {
      const items = v.slice(0, 8).map((x) => show(x, depth + 1));
      return `[${items.join(',')}${v.length > 8 ? ',...' : ''}]`;
    }
    const keys = Object.keys(v);
    const items = keys
      .slice(0, 8)
      .map((k) => `${JSON.stringify(k)}:${show((v as Record<string, unknown>)[k], depth + 1)}`);
    return `{${items.join(',')}${keys.length > 8 ? ',...' : ''}}`;
  };
  const text = show(value, 0);
  return text.length > max ? `${text.slice(0, max)}...` : text;
}
