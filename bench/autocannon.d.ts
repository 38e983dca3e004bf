// The part of autocannon's API the load benchmark uses (the package ships no types).
declare module 'autocannon' {
  interface Request {
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    setupRequest?: (req: Request) => Request;
  }
  interface Result {
    requests: { average: number };
    latency: { p50: number; p99: number };
    errors: number;
    non2xx: number;
  }
  export default function autocannon(opts: {
    url: string;
    connections: number;
    duration: number;
    requests?: Request[];
  }): Promise<Result>;
}
