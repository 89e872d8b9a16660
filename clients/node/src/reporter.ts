// The buffered reporter: records go to ingest_usage_batch in batches; while the database is unreachable they go
// to the spill file and are replayed when it returns, exactly once thanks to their call_id.
import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import type { Pool } from 'pg';
import { AosCusError } from './errors';
import { SpillEntry, SpillFile } from './spill';
import { Queryable, TenantBinding, ingestBatch } from './sql';

export interface ReporterOptions {
  /** Where records go: a pg Pool whose role may call ingest_usage_batch (aos_cus_app). */
  pool: Queryable & Partial<Pick<Pool, 'on'>>;
  tenantBinding?: TenantBinding;
  /** Records per ingest_usage_batch call (1..10000, default 100); a full buffer flushes at once. */
  batchSize?: number;
  /** A partial batch is sent after this long (default 1000 ms). */
  flushIntervalMs?: number;
  /** Records held in memory at most (default 10000); past it new records are dropped and counted. */
  maxBufferedRecords?: number;
  /**
   * The spill file (default $AOS_CUS_SPILL_PATH, else .aos-cus-spill.jsonl in the working directory); null: no
   * spill (records wait in memory, bounded by maxBufferedRecords). One process per file (a .lock file says which).
   */
  spillPath?: string | null;
  /** fdatasync after every spill append (default true): spilled records survive a power loss, not only a crash. */
  spillFsync?: boolean;
  /** Spill size limit (default 256 MiB); past it new records are dropped and counted, the spill is kept. */
  maxSpillBytes?: number;
  /** Backoff between attempts to reach a database that failed: doubles from min to max (default 250..30000 ms). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Flush when the process is about to exit and spill what is left at 'exit' (default true). */
  flushOnExit?: boolean;
  /** Signals on which to flush, then let the signal take its course (default ['SIGTERM']; [] for none). */
  signals?: NodeJS.Signals[];
  /** How long a flush on a signal or close() may take before the rest is spilled (default 5000 ms). */
  closeTimeoutMs?: number;
}

export interface ReporterStats {
  recorded: number;
  inserted: number;
  duplicate: number;
  rejected: number;
  spilled: number;
  replayed: number;
  dropped: number;
  tornSpillLines: number;
  buffered: number;
  spillBytes: number;
  databaseUp: boolean;
}

interface Entry extends SpillEntry {}

/**
 * Events: 'rejected' (entry, error text) for records the server refused (kept in cus_ingest_rejects),
 * 'spilled' (count), 'replayed' (count), 'dropped' (count, why), 'failure' (error) when a send fails.
 */
export class Reporter extends EventEmitter {
  private readonly db: Queryable;
  private readonly binding: TenantBinding;
  private readonly batchSize: number;
  private readonly maxBuffered: number;
  private readonly maxSpillBytes: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly closeTimeoutMs: number;
  private readonly spill: SpillFile | null;
  private buffer: Entry[] = [];
  private inflight: Entry[] = [];
  private pumping: Promise<void> | null = null;
  private again = false;
  private down = false;
  private retryDelay = 0;
  private retryAt = 0;
  private spillBytes = 0;
  private replayDue: boolean;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly hooks: Array<[string | symbol, (...a: any[]) => void]> = [];
  private readonly counts = { recorded: 0, inserted: 0, duplicate: 0, rejected: 0, spilled: 0, replayed: 0, dropped: 0, tornSpillLines: 0 };

  constructor(opts: ReporterOptions) {
    super();
    this.db = opts.pool;
    this.binding = opts.tenantBinding ?? 'setting';
    this.batchSize = opts.batchSize ?? 100;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1 || this.batchSize > 10000) {
      throw new AosCusError('batchSize must be an integer from 1 to 10000 (the limit of ingest_usage_batch)');
    }
    this.maxBuffered = opts.maxBufferedRecords ?? 10000;
    this.maxSpillBytes = opts.maxSpillBytes ?? 256 * 1024 * 1024;
    this.retryMinMs = opts.retryMinMs ?? 250;
    this.retryMaxMs = opts.retryMaxMs ?? 30000;
    this.closeTimeoutMs = opts.closeTimeoutMs ?? 5000;
    const spillPath = opts.spillPath === undefined
      ? (process.env.AOS_CUS_SPILL_PATH || path.join(process.cwd(), '.aos-cus-spill.jsonl'))
      : opts.spillPath;
    this.spill = spillPath === null ? null : new SpillFile(path.resolve(spillPath), opts.spillFsync ?? true);
    try {
      this.spill?.lock();
    } catch (e) {
      throw new AosCusError((e as Error).message);
    }
    this.spillBytes = this.spill?.size() ?? 0;
    this.replayDue = this.spillBytes > 0;
    // An idle pooled connection that the server closes (a restart) makes the pool emit 'error': without a
    // listener that would end the process. The next query gets a fresh connection or fails and is spilled.
    if (opts.pool.on) opts.pool.on('error', () => undefined);
    this.timer = setInterval(() => this.kick(), opts.flushIntervalMs ?? 1000);
    this.timer.unref();
    if (opts.flushOnExit ?? true) {
      // One flush per drain of the loop: if it could not empty the buffer (database down, no spill), the
      // process exits and 'exit' spills or counts the rest instead of retrying forever.
      let tried = false;
      this.hook('beforeExit', () => {
        if (tried || (this.buffer.length === 0 && !(this.replayDue && !this.down))) return;
        tried = true;
        void this.flush().then(() => { tried = this.buffer.length > 0; });
      });
      this.hook('exit', () => this.spillNowSync());
    }
    for (const sig of opts.signals ?? ['SIGTERM']) {
      const onSignal = () => {
        void this.close().finally(() => {
          if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
        });
      };
      this.hook(sig, onSignal);
    }
    if (this.replayDue) this.kick();
  }

  /** Queues one ingest record (see README "Record keys") for the tenant. Never throws, never waits. */
  record(tenant: string, record: Record<string, unknown>): void {
    this.counts.recorded++;
    if (this.closed || this.buffer.length >= this.maxBuffered) {
      this.drop(1, this.closed ? 'the reporter is closed' : `more than maxBufferedRecords (${this.maxBuffered}) in memory`);
      return;
    }
    this.buffer.push({ t: tenant, r: record });
    if (this.buffer.length >= this.batchSize) this.kick();
  }

  /** Sends everything buffered (or spills it if the database is unreachable); resolves when done. */
  async flush(): Promise<void> {
    this.retryAt = 0;
    await this.kick();
    while (this.pumping) await this.pumping;
  }

  /** Flushes (spilling what is left after closeTimeoutMs), stops the timer, removes the process hooks. */
  async close(): Promise<void> {
    if (this.closed) return;
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([
      this.flush(),
      new Promise<void>((resolve) => { timeout = setTimeout(resolve, this.closeTimeoutMs); }),
    ]);
    clearTimeout(timeout);
    this.closed = true;
    this.spillNowSync();
    clearInterval(this.timer);
    for (const [ev, fn] of this.hooks) process.removeListener(ev, fn);
    this.spill?.unlock();
  }

  stats(): ReporterStats {
    return { ...this.counts, buffered: this.buffer.length + this.inflight.length, spillBytes: this.spillBytes, databaseUp: !this.down };
  }

  private hook(ev: string | symbol, fn: (...a: any[]) => void): void {
    process.on(ev, fn);
    this.hooks.push([ev, fn]);
  }

  /** Runs the pump unless it is running; if it is, it runs once more when done. */
  private kick(): Promise<void> {
    if (this.pumping) {
      this.again = true;
      return this.pumping;
    }
    this.pumping = (async () => {
      do {
        this.again = false;
        try {
          await this.pump();
        } catch (e) {
          this.emit('failure', e);
        }
      } while (this.again && !this.down);
      this.pumping = null;
    })();
    return this.pumping;
  }

  private async pump(): Promise<void> {
    if (this.down && Date.now() < this.retryAt) {
      await this.spillBuffer();
      return;
    }
    if (this.replayDue && this.spill) {
      try {
        const r = await this.spill.replay(this.batchSize, (tenant, entries) => this.send(tenant, entries));
        this.counts.replayed += r.records;
        this.counts.tornSpillLines += r.torn;
        this.spillBytes = this.spill.size();
        this.replayDue = this.spillBytes > 0;
        if (r.records > 0) this.emit('replayed', r.records);
      } catch (e) {
        this.failed(e);
        await this.spillBuffer();
        return;
      }
    }
    while (this.buffer.length > 0) {
      const tenant = this.buffer[0].t;
      const batch: Entry[] = [];
      const rest: Entry[] = [];
      for (const e of this.buffer) (e.t === tenant && batch.length < this.batchSize ? batch : rest).push(e);
      this.buffer = rest;
      this.inflight = batch;
      try {
        await this.send(tenant, batch);
        this.inflight = [];
      } catch (e) {
        this.buffer = batch.concat(this.buffer);
        this.inflight = [];
        this.failed(e);
        await this.spillBuffer();
        return;
      }
    }
  }

  /** One ingest_usage_batch call; per-record rejects are counted and emitted, anything else throws. */
  private async send(tenant: string, entries: Entry[]): Promise<void> {
    const rows = await ingestBatch(this.db, this.binding, tenant, entries.map((e) => e.r));
    this.down = false;
    this.retryDelay = 0;
    for (const row of rows) {
      if (row.status === 'inserted') this.counts.inserted++;
      else if (row.status === 'duplicate') this.counts.duplicate++;
      else {
        this.counts.rejected++;
        this.emit('rejected', entries[row.ord - 1], row.error);
      }
    }
  }

  private failed(e: unknown): void {
    this.down = true;
    this.retryDelay = Math.min(this.retryMaxMs, Math.max(this.retryMinMs, this.retryDelay * 2));
    this.retryAt = Date.now() + this.retryDelay;
    this.emit('failure', e);
  }

  /** Moves the buffer to the spill (nothing without a spill file: the records wait in memory). */
  private async spillBuffer(): Promise<void> {
    if (!this.spill || this.buffer.length === 0) return;
    const entries = this.buffer;
    this.buffer = [];
    const kept = this.admitToSpill(entries);
    if (kept.length === 0) return;
    try {
      this.spillBytes += await this.spill.append(kept);
      this.counts.spilled += kept.length;
      this.replayDue = true;
      this.emit('spilled', kept.length);
    } catch (e) {
      this.buffer = kept.concat(this.buffer);
      this.emit('failure', e);
    }
  }

  /** At 'exit' or close(): whatever is buffered or unacknowledged goes to the spill, synchronously. */
  private spillNowSync(): void {
    const entries = this.inflight.concat(this.buffer);
    this.inflight = [];
    this.buffer = [];
    if (entries.length === 0) return;
    if (!this.spill) {
      this.drop(entries.length, 'the process exits and there is no spill file');
      return;
    }
    const kept = this.admitToSpill(entries);
    if (kept.length === 0) return;
    try {
      this.spillBytes += this.spill.appendSync(kept);
      this.counts.spilled += kept.length;
    } catch (e) {
      this.drop(kept.length, `the spill file cannot be written: ${(e as Error).message}`);
    }
  }

  /** The entries that fit under maxSpillBytes; the others are dropped and counted. */
  private admitToSpill(entries: Entry[]): Entry[] {
    let room = this.maxSpillBytes - this.spillBytes;
    let n = 0;
    while (n < entries.length) {
      room -= Buffer.byteLength(JSON.stringify(entries[n])) + 1;
      if (room < 0) break;
      n++;
    }
    if (n < entries.length) this.drop(entries.length - n, `the spill file reached maxSpillBytes (${this.maxSpillBytes})`);
    return entries.slice(0, n);
  }

  private drop(n: number, why: string): void {
    this.counts.dropped += n;
    this.emit('dropped', n, why);
  }
}

const shared = new WeakMap<object, Reporter>();

/** The reporter of a pool with default options, created on first use (wrappers given only a pool use it). */
export function reporterFor(pool: ReporterOptions['pool'], tenantBinding?: TenantBinding): Reporter {
  let r = shared.get(pool);
  if (!r) {
    r = new Reporter({ pool, tenantBinding });
    shared.set(pool, r);
  }
  return r;
}
