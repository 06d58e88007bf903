//! `node dist/scripts/rtt_floor.js [--count N] [--bytes B]`: a reference for replicated write
//! latency on this machine. Two Node.js processes on loopback TCP (Nagle off) pass a B-byte
//! request (default 4096, one 4 KiB write) and an 8-byte reply back and forth at depth 1, which
//! is what protocol C adds to every write at the least: the data to the peer and its ack, with
//! no disk, no engine and no framing. Prints the mean, p50 and p99 round trip in µs (with
//! `--json`, one JSON object: { meanUs, p50Us, p99Us, count, requestBytes, node }).
//! Both processes sleep between messages, so each round trip includes waking idle CPUs: on this
//! project's 2-vCPU VM that is most of it (about 80 µs idle, 13-17 µs with both vCPUs kept
//! busy by other work). A tool that prints figures (BENCH.md), not a test.

import { fork } from "node:child_process";
import { createServer, connect, type AddressInfo, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { intOption } from "./int_option.js";

const replyBytes = 8;

function serve(requestBytes: number): void {
  const server = createServer((socket: Socket) => {
    socket.setNoDelay(true);
    const reply = Buffer.alloc(replyBytes);
    let pending = 0;
    socket.on("data", (chunk: Buffer) => {
      pending += chunk.length;
      for (; pending >= requestBytes; pending -= requestBytes) socket.write(reply);
    });
  });
  server.listen(0, "127.0.0.1", () => process.send!((server.address() as AddressInfo).port));
}

function measure(port: number, count: number, requestBytes: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    socket.setNoDelay(true);
    const request = Buffer.alloc(requestBytes, 0x5a);
    const micros: number[] = [];
    let started = 0n;
    let pending = 0;
    const send = (): void => {
      started = process.hrtime.bigint();
      socket.write(request);
    };
    socket.on("error", reject);
    socket.on("connect", send);
    socket.on("data", (chunk: Buffer) => {
      for (pending += chunk.length; pending >= replyBytes; pending -= replyBytes) {
        micros.push(Number(process.hrtime.bigint() - started) / 1000);
        if (micros.length === count) {
          socket.destroy();
          resolve(micros);
          return;
        }
        send();
      }
    });
  });
}

async function main(): Promise<void> {
  const requestBytes = intOption("--bytes", 4096);
  if (process.argv[2] === "--serve") return serve(requestBytes);
  const count = intOption("--count", 20_000);
  const child = fork(fileURLToPath(import.meta.url), ["--serve", "--bytes", String(requestBytes)]);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once("message", (m) => resolve(Number(m)));
      child.once("exit", (code) => reject(new Error(`the echo process exited (${code})`)));
    });
    // The first thousand round trips warm up the JIT and the socket buffers; not counted.
    await measure(port, 1000, requestBytes);
    const micros = (await measure(port, count, requestBytes)).sort((a, b) => a - b);
    const mean = micros.reduce((a, b) => a + b, 0) / micros.length;
    const at = (q: number): string =>
      micros[Math.min(micros.length - 1, Math.floor(q * micros.length))]!.toFixed(1);
    if (process.argv.includes("--json")) {
      const figures = { meanUs: mean, p50Us: Number(at(0.5)), p99Us: Number(at(0.99)) };
      console.log(JSON.stringify({ ...figures, count, requestBytes, node: process.version }));
      return;
    }
    console.log(
      `loopback TCP round trip between two Node.js ${process.version} processes, ` +
        `${requestBytes}-byte request, ${replyBytes}-byte reply, depth 1, ${count} round trips: ` +
        `mean ${mean.toFixed(1)} µs, p50 ${at(0.5)} µs, p99 ${at(0.99)} µs`,
    );
  } finally {
    child.kill();
  }
}

await main();
