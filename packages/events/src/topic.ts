/** AMQP topic matching: words split by `.`, `*` matches one word, `#` matches zero or more. */
export function topicMatches(pattern: string, key: string): boolean {
  return match(pattern.split('.'), 0, key.split('.'), 0);
}

function match(p: string[], i: number, k: string[], j: number): boolean {
  if (i === p.length) return j === k.length;
  const word = p[i];
  if (word === '#') {
    for (let n = j; n <= k.length; n++) if (match(p, i + 1, k, n)) return true;
    return false;
  }
  if (j === k.length) return false;
  return (word === '*' || word === k[j]) && match(p, i + 1, k, j + 1);
}
