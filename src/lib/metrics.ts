// A small Prometheus registry: counters, histograms and gauges read at scrape time, rendered as text format 0.0.4.

type Labels = Record<string, string>;

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

const keyCache = new WeakMap<Labels, string>();

function labelKey(labels: Labels): string {
  let key = keyCache.get(labels);
  if (key === undefined) {
    const keys = Object.keys(labels).sort();
    key = keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',');
    keyCache.set(labels, key);
  }
  return key;
}

function fmt(name: string, key: string, value: number): string {
  return `${name}${key ? `{${key}}` : ''} ${Number.isFinite(value) ? value : value > 0 ? '+Inf' : '-Inf'}`;
}

interface Metric {
  render(): Promise<string[]> | string[];
}

export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [k, v] of this.values) lines.push(fmt(this.name, k, v));
    return lines;
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  ) {}
  observe(labels: Labels, value: number): void {
    const k = labelKey(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    // counts are per bucket here and made cumulative when rendered
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [k, s] of this.series) {
      let cum = 0;
      this.buckets.forEach((b, i) => {
        cum += s.counts[i]!;
        lines.push(fmt(`${this.name}_bucket`, k ? `${k},le="${b}"` : `le="${b}"`, cum));
      });
      lines.push(fmt(`${this.name}_bucket`, k ? `${k},le="+Inf"` : 'le="+Inf"', s.count));
      lines.push(fmt(`${this.name}_sum`, k, s.sum), fmt(`${this.name}_count`, k, s.count));
    }
    return lines;
  }
}

/** A gauge whose values are read when scraped (e.g. jobs by state, counted in the store). */
export class CollectedGauge implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly collect: () => Promise<{ labels: Labels; value: number }[]>,
  ) {}
  async render(): Promise<string[]> {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const { labels, value } of await this.collect()) lines.push(fmt(this.name, labelKey(labels), value));
    return lines;
  }
}

/** A counter kept elsewhere (another thread's tally), read when the metrics are: a number, or a value per label set. */
export class CollectedCounter implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => number | { labels: Labels; value: number }[],
  ) {}
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    const values = this.read();
    for (const { labels, value } of typeof values === 'number' ? [{ labels: {}, value: values }] : values) lines.push(fmt(this.name, labelKey(labels), value));
    return lines;
  }
}

export class MetricsRegistry {
  private readonly metrics: Metric[] = [];
  register<M extends Metric>(metric: M): M {
    this.metrics.push(metric);
    return metric;
  }
  async render(): Promise<string> {
    const parts = await Promise.all(this.metrics.map((m) => m.render()));
    return parts.flat().join('\n') + '\n';
  }
}

/** The hub's standard metrics. Gauges that need the store are registered where the store is known. */
export function createHubMetrics() {
  const registry = new MetricsRegistry();
  const requests = registry.register(new Counter('hub_http_requests_total', 'HTTP requests by method, route and status.'));
  const latency = registry.register(new Histogram('hub_http_request_duration_seconds', 'HTTP request latency by method and route.'));
  // Label sets of the request path, built once per method/route/status instead of on every request.
  const labelCache = new Map<string, { all: Labels; route: Labels }>();
  return {
    registry,
    requests,
    latency,
    deliveries: registry.register(new Counter('hub_webhook_deliveries_total', 'Outbound webhook delivery attempts by outcome.')),
    observeRequest(method: string, route: string, status: number, seconds: number): void {
      const k = `${method} ${status} ${route}`;
      let labels = labelCache.get(k);
      if (!labels) {
        labels = { all: { method, route, status: String(status) }, route: { method, route } };
        if (labelCache.size < 10_000) labelCache.set(k, labels);
      }
      requests.inc(labels.all);
      latency.observe(labels.route, seconds);
    },
  };
}

export type HubMetrics = ReturnType<typeof createHubMetrics>;
