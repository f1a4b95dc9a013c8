/**
 * A real DNS server for discovery tests: Debian's dnsmasq on a loopback port, answering from a
 * hosts file with a 1 s TTL. Changing records = rewrite the file and SIGHUP (dnsmasq re-reads it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deadUrl, tempDir } from './harness.js';

/** Dnsmasq is a running dnsmasq process. */
export class Dnsmasq {
  readonly server: string;
  readonly #hosts: string;
  readonly #proc: ChildProcess;

  private constructor(server: string, hosts: string, proc: ChildProcess) {
    this.server = server;
    this.#hosts = hosts;
    this.#proc = proc;
  }

  /** start launches dnsmasq serving `records` (name -> addresses); fails clearly when it is not installed. */
  static async start(records: Record<string, string[]>): Promise<Dnsmasq> {
    const bin = ['/usr/sbin/dnsmasq', 'dnsmasq'].find((b) => spawnSync(b, ['--version']).status === 0);
    if (bin === undefined) throw new Error('dnsmasq is not installed: apt-get install -y dnsmasq-base (.ci/run does this)');
    const port = Number(new URL(await deadUrl()).port);
    const hosts = join(tempDir(), 'hosts');
    writeFileSync(hosts, Dnsmasq.#render(records));
    const proc = spawn(bin, ['--keep-in-foreground', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts', `--addn-hosts=${hosts}`, '--local-ttl=1', '--user=root', '--pid-file=', '--log-facility=-'], { stdio: 'ignore' });
    const d = new Dnsmasq(`127.0.0.1:${port}`, hosts, proc);
    // Ready when it answers.
    const { Resolver } = await import('node:dns/promises');
    const r = new Resolver({ timeout: 200, tries: 1 });
    r.setServers([d.server]);
    const name = Object.keys(records)[0]!;
    for (let i = 0; i < 50; i++) {
      if (await r.resolve4(name).then(() => true, () => false)) return d;
      await new Promise((res) => setTimeout(res, 50));
    }
    d.stop();
    throw new Error('dnsmasq did not answer');
  }

  static #render(records: Record<string, string[]>): string {
    return Object.entries(records).flatMap(([name, addrs]) => addrs.map((a) => `${a} ${name}`)).join('\n') + '\n';
  }

  /** set replaces the records and makes dnsmasq re-read them. */
  set(records: Record<string, string[]>): void {
    writeFileSync(this.#hosts, Dnsmasq.#render(records));
    this.#proc.kill('SIGHUP');
  }

  stop(): void {
    this.#proc.kill('SIGTERM');
  }
}
