// A separate Node process for the reporter's crash and signal tests. argv[2] is a JSON job:
//   { mode: 'spill' | 'sigterm' | 'exit' | 'idle', pool, spillPath, tenant, integration, n, prefix }
// spill: the database is unreachable; records reach the spill, "ready" is printed, then it waits to be killed.
// sigterm: records wait in memory (long interval), "ready", then it waits for SIGTERM.
// exit: records are buffered and process.exit(0) runs at once. idle: records are buffered and the loop drains.
import { Pool } from 'pg';
import { Reporter } from '../src';

const job = JSON.parse(process.argv[2]);
const pool = new Pool({ ...job.pool, allowExitOnIdle: true, idleTimeoutMillis: 100 });
const reporter = new Reporter({
  pool,
  spillPath: job.spillPath,
  batchSize: 1000,
  flushIntervalMs: job.mode === 'spill' ? 20 : 60000,
  retryMinMs: 60000,
});
for (let i = 0; i < job.n; i++) {
  reporter.record(job.tenant, {
    integration_id: job.integration, call_id: `${job.prefix}-${i}`, model: 'gpt-4o', started_at: new Date().toISOString(),
    usage: { prompt_tokens: 10 + i, completion_tokens: 5 },
  });
}
if (job.mode === 'spill') {
  void reporter.flush().then(() => {
    process.stdout.write(`ready ${reporter.stats().spilled}\n`);
    setInterval(() => undefined, 1000);
  });
} else if (job.mode === 'sigterm') {
  process.stdout.write('ready\n');
  setInterval(() => undefined, 1000);
} else if (job.mode === 'exit') {
  process.exit(0);
}
