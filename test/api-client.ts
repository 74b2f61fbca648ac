// A tiny client of a hub running in another process: JSON in, JSON out, and any status of 300 or more thrown with
// its problem document (for process tests and benchmarks, which talk to a real port).
export type ApiCall = (method: string, path: string, body?: unknown) => Promise<any>;

export function apiClient(base: string, key: string): ApiCall {
  return async (method, path, body) => {
    const res = await fetch(base + path, {
      method,
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json().catch(() => null)) as any;
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
}
