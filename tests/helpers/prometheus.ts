/**
 * A strict reader of the Prometheus text exposition format (0.0.4), for tests: it throws on any
 * line the format does not allow, and on a sample outside its family.
 *
 * @module
 */

/** One sample line. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A metric family: its TYPE, HELP and samples. */
export interface Family {
  type: string;
  help: string;
  samples: Sample[];
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL = `([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\\\\n]|\\\\[\\\\"n])*)"`;
const VALUE = "(?:[-+]?(?:\\d+\\.?\\d*(?:[eE][-+]?\\d+)?|\\.\\d+(?:[eE][-+]?\\d+)?)|NaN|[+-]Inf)";
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL},?)*)\\})? (${VALUE})(?: -?\\d+)?$`);
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
const SUFFIXES: Record<string, string[]> = {
  counter: [""],
  gauge: [""],
  untyped: [""],
  histogram: ["_bucket", "_sum", "_count"],
  summary: ["", "_sum", "_count"],
};

/** Parses exposition text into families by name; throws naming the first bad line. */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, f = { type: "untyped", help: "", samples: [] });
    return f;
  };
  for (const [index, line] of text.split("\n").entries()) {
    const where = `line ${index + 1}: ${line}`;
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta;
      if (!new RegExp(`^${NAME}$`).test(name)) throw new Error(`bad metric name, ${where}`);
      if (kind === "TYPE") {
        if (!TYPES.has(rest)) throw new Error(`bad type, ${where}`);
        if (family(name).samples.length > 0) throw new Error(`TYPE after samples, ${where}`);
        family(name).type = rest;
      } else {
        family(name).help = rest;
      }
      continue;
    }
    if (line.startsWith("#")) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a sample, ${where}`);
    const [, name, labelText = "", , , value] = match;
    const labels: Record<string, string> = {};
    for (const [, key, raw] of labelText.matchAll(new RegExp(LABEL, "g"))) {
      labels[key] = raw.replace(/\\n/g, "\n").replace(/\\(["\\])/g, "$1");
    }
    const owner = [...families.entries()].find(([base, f]) =>
      SUFFIXES[f.type].some((suffix) => name === base + suffix)
    );
    if (!owner) throw new Error(`a sample outside any declared family, ${where}`);
    owner[1].samples.push({
      name,
      labels,
      value: value === "+Inf" ? Infinity : value === "-Inf" ? -Infinity : Number(value),
    });
  }
  return families;
}

/** The value of the sample `name` whose labels include `labels`; undefined when absent. */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const f of families.values()) {
    const sample = f.samples.find((s) =>
      s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
    );
    if (sample) return sample.value;
  }
  return undefined;
}
