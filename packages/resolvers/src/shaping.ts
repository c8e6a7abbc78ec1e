/**
 * At most `max` characters, cut at a word boundary with an ellipsis when it had to be cut.
 * The ellipsis counts toward `max`.
 */
export function summarize(text: string, max = 140): string {
  const clean = text.replace(/\s+/g, ' ').trim();
  if (clean.length <= max) return clean;
  let cut = clean.slice(0, max - 1);
  const space = cut.lastIndexOf(' ');
  // A single very long word has no boundary worth keeping: cut inside it rather than return nothing.
  if (space > max / 2) cut = cut.slice(0, space);
  return `${cut.replace(/[\s,.;:!?—-]+$/, '')}…`;
}

/** The narrowest image at least `width` pixels wide, else the widest there is; null when there are none. */
export function closestImage(
  images: readonly { width: number; url: string }[],
  width: number,
): string | null {
  let best: { width: number; url: string } | undefined;
  let widest: { width: number; url: string } | undefined;
  for (const image of images) {
    if (!widest || image.width > widest.width) widest = image;
    if (image.width >= width && (!best || image.width < best.width)) best = image;
  }
  return (best ?? widest)?.url ?? null;
}
