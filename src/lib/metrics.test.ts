import { describe, expect, it } from 'vitest';
import { CollectedGauge, Counter, Histogram, MetricsRegistry } from './metrics.ts';

describe('MetricsRegistry', () => {
  it('renders counters, cumulative histogram buckets and collected gauges in Prometheus text', async () => {
    const r = new MetricsRegistry();
    const c = r.register(new Counter('c_total', 'A counter.'));
    const h = r.register(new Histogram('h_seconds', 'A histogram.', [0.1, 1]));
    r.register(new CollectedGauge('g', 'A gauge.', async () => [{ labels: { state: 'queued' }, value: 3 }]));
    c.inc({ route: '/v1/x', status: '200' });
    c.inc({ status: '200', route: '/v1/x' });
    h.observe({ route: '/a' }, 0.05);
    h.observe({ route: '/a' }, 0.5);
    h.observe({ route: '/a' }, 5);
    const text = await r.render();
    expect(text).toContain('c_total{route="/v1/x",status="200"} 2');
    expect(text).toContain('h_seconds_bucket{route="/a",le="0.1"} 1');
    expect(text).toContain('h_seconds_bucket{route="/a",le="1"} 2');
    expect(text).toContain('h_seconds_bucket{route="/a",le="+Inf"} 3');
    expect(text).toContain('h_seconds_count{route="/a"} 3');
    expect(text).toContain('g{state="queued"} 3');
  });

  it('escapes label values', async () => {
    const r = new MetricsRegistry();
    r.register(new Counter('x_total', 'X.')).inc({ v: 'a"b\\c\nd' });
    expect(await r.render()).toContain('x_total{v="a\\"b\\\\c\\nd"} 1');
  });
});
