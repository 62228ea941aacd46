/*
 * Caller input repeated in error messages (problem details, field errors). Free of imports, so
 * that plain-Node code (the manifest parser the device agent runs) can use it too.
 */

/** How much of a caller's input an error message repeats: enough to recognise it, no more. */
export const MAX_ECHOED_CHARS = 100;

/**
 * Caller input as an error message repeats it: at most `max` characters, then an ellipsis, so
 * that a 100 KB field does not come back whole in the answer (and in every log of it).
 */
export function clipInput(value: string, max = MAX_ECHOED_CHARS): string {
  if (value.length <= max) {
    return value;
  }
  // Never half a surrogate pair: the answer must stay valid UTF-8.
  const end = /[\uD800-\uDBFF]/.test(value[max - 1]) ? max - 1 : max;
  return `${value.slice(0, end)}…`;
}

/**
 * Caller input quoted for a message: JSON-quoted (quotes, control characters and invisible
 * characters stay visible) and cut as {@link clipInput} does, the ellipsis after the quote.
 */
export function quoteInput(value: string, max = MAX_ECHOED_CHARS): string {
  const clipped = clipInput(value, max);
  return clipped === value ? JSON.stringify(value) : `${JSON.stringify(clipped.slice(0, -1))}…`;
}
