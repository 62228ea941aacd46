import { clipInput, MAX_ECHOED_CHARS, quoteInput } from './caller-input';

describe(clipInput.name, () => {
  it('keeps input up to the limit as it is', () => {
    const text = 'a'.repeat(MAX_ECHOED_CHARS);
    expect(clipInput(text)).toBe(text);
    expect(clipInput('')).toBe('');
  });

  it('cuts longer input to the limit and marks the cut', () => {
    expect(clipInput('b'.repeat(130_000))).toBe(`${'b'.repeat(MAX_ECHOED_CHARS)}…`);
    expect(clipInput('abcdef', 3)).toBe('abc…');
  });

  it('never splits a surrogate pair (the answer must stay valid UTF-8)', () => {
    const clipped = clipInput(`ab${'😀'.repeat(10)}`, 3);
    expect(clipped).toBe('ab…');
    // A lone surrogate would not survive the trip through UTF-8.
    expect(Buffer.from(clipped).toString()).toBe(clipped);
    expect(clipInput('a😀😀', 3)).toBe('a😀…');
  });
});

describe(quoteInput.name, () => {
  it('JSON-quotes short input, so that quotes and control characters stay visible', () => {
    expect(quoteInput('echo')).toBe('"echo"');
    expect(quoteInput('a"b\n')).toBe('"a\\"b\\n"');
  });

  it('quotes the start of long input and puts the ellipsis after the quote', () => {
    expect(quoteInput('x'.repeat(500))).toBe(`"${'x'.repeat(MAX_ECHOED_CHARS)}"…`);
    expect(quoteInput('"'.repeat(10), 4)).toBe('"\\"\\"\\"\\""…');
  });
});
