// Parsing of numeric command-line options, with messages that name the option.

export function positiveInt(name: string, text: string): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v <= 0)
    throw new Error(`${name}: expected a positive integer, got "${text}"`);
  return v;
}

export function positiveNumber(name: string, text: string, allowZero = false): number {
  const v = Number(text);
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0))
    throw new Error(
      `${name}: expected a ${allowZero ? 'non-negative' : 'positive'} number, got "${text}"`,
    );
  return v;
}
