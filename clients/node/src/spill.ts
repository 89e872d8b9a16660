// The reporter's spill: an append-only JSON-lines file of records the database has not acknowledged.
import * as fs from 'node:fs';
import * as readline from 'node:readline';

/** One spilled record: the tenant it is for and the ingest record. */
export interface SpillEntry {
  t: string;
  r: Record<string, unknown>;
}

const held = new Set<string>();

/**
 * `path` receives appends; a replay first renames it to `path.replay` (so appends during the replay start a new
 * file) and deletes that only after every record in it was acknowledged. A crash in between replays it again:
 * the records' call_ids make the second ingest a duplicate. `path.lock` holds the owning process id.
 */
export class SpillFile {
  readonly path: string;
  readonly replayPath: string;
  private readonly lockPath: string;
  private readonly fsync: boolean;

  constructor(path: string, fsync: boolean) {
    this.path = path;
    this.replayPath = path + '.replay';
    this.lockPath = path + '.lock';
    this.fsync = fsync;
  }

  /** Takes the lock: refused while another live process (or another reporter here) holds it. */
  lock(): void {
    if (held.has(this.path)) throw new Error(`spill file ${this.path} is already used by another reporter of this process`);
    let owner = NaN;
    try { owner = Number(fs.readFileSync(this.lockPath, 'utf8')); } catch { /* no lock yet */ }
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
      throw new Error(`spill file ${this.path} is locked by process ${owner} (${this.lockPath})`);
    }
    fs.writeFileSync(this.lockPath, String(process.pid));
    held.add(this.path);
  }

  /** Releases the lock if this process holds it. */
  unlock(): void {
    if (!held.delete(this.path)) return;
    try {
      if (fs.readFileSync(this.lockPath, 'utf8') === String(process.pid)) fs.unlinkSync(this.lockPath);
    } catch { /* already gone */ }
  }

  /** Bytes in both files. */
  size(): number {
    return fileSize(this.path) + fileSize(this.replayPath);
  }

  /** True when something waits for replay. */
  pending(): boolean {
    return this.size() > 0;
  }

  /**
   * Appends entries with one write (and one fdatasync when fsync is on); returns the bytes written. After a torn
   * append (a crash mid-write) the file does not end with a newline: the new entries start on a line of their own.
   */
  async append(entries: SpillEntry[]): Promise<number> {
    const fh = await fs.promises.open(this.path, 'a+', 0o600);
    let data = serialize(entries);
    try {
      const { size } = await fh.stat();
      const last = Buffer.alloc(1);
      if (size > 0 && (await fh.read(last, 0, 1, size - 1)).bytesRead === 1 && last[0] !== 0x0a) data = '\n' + data;
      await fh.write(data);
      if (this.fsync) await fh.datasync();
    } finally {
      await fh.close();
    }
    return Buffer.byteLength(data);
  }

  /** The same, synchronously: for the process's 'exit' event, where nothing asynchronous runs any more. */
  appendSync(entries: SpillEntry[]): number {
    const fd = fs.openSync(this.path, 'a+', 0o600);
    let data = serialize(entries);
    try {
      const size = fs.fstatSync(fd).size;
      const last = Buffer.alloc(1);
      if (size > 0 && fs.readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a) data = '\n' + data;
      fs.writeSync(fd, data);
      if (this.fsync) fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return Buffer.byteLength(data);
  }

  /**
   * Replays: moves the spill aside (unless an earlier replay's file is still there), reads it line by line and
   * hands batches of at most `batchSize` entries of one tenant to `send`, then deletes it. A torn last line
   * (a crash during an append) is skipped and counted. Throws what `send` throws, keeping the file.
   */
  async replay(batchSize: number, send: (tenant: string, entries: SpillEntry[]) => Promise<void>): Promise<{ records: number; torn: number }> {
    if (!fs.existsSync(this.replayPath)) {
      if (fileSize(this.path) === 0) return { records: 0, torn: 0 };
      fs.renameSync(this.path, this.replayPath);
    }
    let records = 0;
    let torn = 0;
    const batches = new Map<string, SpillEntry[]>();
    const input = fs.createReadStream(this.replayPath, { encoding: 'utf8' });
    const lines = readline.createInterface({ input, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (line === '') continue;
        let entry: SpillEntry;
        try {
          entry = JSON.parse(line) as SpillEntry;
        } catch {
          torn++;
          continue;
        }
        const batch = batches.get(entry.t) ?? [];
        batch.push(entry);
        batches.set(entry.t, batch);
        if (batch.length >= batchSize) {
          batches.delete(entry.t);
          await send(entry.t, batch);
          records += batch.length;
        }
      }
    } finally {
      lines.close();
      input.destroy();
    }
    for (const [tenant, batch] of batches) {
      await send(tenant, batch);
      records += batch.length;
    }
    fs.unlinkSync(this.replayPath);
    return { records, torn };
  }
}

function serialize(entries: SpillEntry[]): string {
  return entries.map((e) => JSON.stringify(e) + '\n').join('');
}

function fileSize(path: string): number {
  try { return fs.statSync(path).size; } catch { return 0; }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
