// A strict reader of Prometheus's text exposition format (version 0.0.4), for tests: every line is
// empty, a HELP, a TYPE or a sample of a family declared before it; anything else throws.

/** One sample line: its name (with `_bucket`, `_sum`, `_count` for histograms), labels and value. */
export interface PrometheusSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: -?\\d+)?$`);
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/;
const SUFFIXES: Readonly<Record<string, readonly string[]>> = { counter: [''], gauge: [''], untyped: [''], histogram: ['_bucket', '_sum', '_count'], summary: ['', '_sum', '_count'] };

/**
 * Parses `text`. @throws Error naming the line that is not in the format (a sample of an
 * undeclared family, a bad label or value, a family declared twice).
 */
export function parsePrometheusText(text: string): PrometheusSample[] {
  const types = new Map<string, string>();
  const samples: PrometheusSample[] = [];
  const lines = text.split('\n');
  if (lines.at(-1) !== '') throw new Error('the text does not end with a newline');
  for (const [index, line] of lines.slice(0, -1).entries()) {
    const where = `line ${index + 1} (${JSON.stringify(line)})`;
    if (line === '' || line.startsWith('# HELP ')) continue; // the format ignores empty lines
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      if (types.has(type[1]!)) throw new Error(`${where}: family declared twice`);
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = SAMPLE.exec(line);
    if (!sample) throw new Error(`${where}: not a sample`);
    const [, name, labelText = '', valueText] = sample as unknown as [string, string, string | undefined, string];
    const family = [...types].find(([base, kind]) => SUFFIXES[kind]!.some((suffix) => name === base + suffix));
    if (!family) throw new Error(`${where}: no TYPE declares its family`);
    const labels: Record<string, string> = {};
    for (let rest = labelText; rest !== ''; ) {
      const label = LABEL.exec(rest);
      if (!label) throw new Error(`${where}: bad labels at ${JSON.stringify(rest)}`);
      labels[label[1]!] = label[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
      rest = rest.slice(label[0].length);
    }
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : Number(valueText);
    if (Number.isNaN(value) && valueText !== 'NaN') throw new Error(`${where}: bad value`);
    samples.push({ name, labels, value });
  }
  return samples;
}
