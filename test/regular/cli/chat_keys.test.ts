// fla chat as a person types it: in a pseudo-terminal (Ctrl-C stops a reply and returns to the prompt, Ctrl-C at an
// empty prompt and Ctrl-D quit with 0, /help, unknown slash commands) and with piped stdin (a recurrent model goes
// past --ctx; an attention model at a full context offers /drop and /reset instead of exiting).
import { describe, expect, test } from 'bun:test';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedModel } from '../../helpers/fixtures.ts';

const ROOT = join(import.meta.dir, '../../..');
const TEMPLATE = '{% for m in messages %}{{ m.role }}:{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}';
const rwkv = sharedModel('kjv-rwkv7');
const llama = sharedModel('kjv-llama');

function withTemplate(src: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'fla-chat-keys-'));
  for (const f of ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) symlinkSync(join(src, f), join(dir, f));
  writeFileSync(join(dir, 'chat_template.jinja'), TEMPLATE);
  return dir;
}

// Drives a command in a pty: steps of [text to wait for, keys to send]; prints {out, code} as JSON.
const PTY = String.raw`
import json, os, pty, select, sys, time
steps = json.loads(sys.argv[1]); cmd = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
out = b''
def read_until(pat, limit):
    global out
    end = time.time() + (2 if pat == '' else limit)
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try: chunk = os.read(fd, 4096)
            except OSError: return False
            if not chunk: return False
            out += chunk
            if pat and pat.encode() in out[mark:]: return True
    return pat == ''
ok = True
mark = 0
for wait, keys in steps:
    if not read_until(wait, 60): ok = False; break
    mark = len(out)
    os.write(fd, keys.encode())
code = None
end = time.time() + 30
while time.time() < end:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done: code = os.waitstatus_to_exitcode(status); break
    try:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r: out += os.read(fd, 4096)
    except OSError: pass
if code is None: os.kill(pid, 9)
print(json.dumps({'out': out.decode('utf-8', 'replace'), 'code': code, 'ok': ok}))
`;

function pty(steps: [string, string][], args: string[]) {
  const p = Bun.spawnSync(['python3', '-c', PTY, JSON.stringify(steps), process.execPath, join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT });
  return JSON.parse(p.stdout.toString()) as { out: string; code: number | null; ok: boolean };
}

function piped(args: string[], stdin: string) {
  const p = Bun.spawnSync([process.execPath, join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT, stdin: Buffer.from(stdin) });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

describe.skipIf(!rwkv)('fla chat keys', () => {
  const dir = rwkv ? withTemplate(rwkv) : '';

  test('Ctrl-C stops an endless reply and returns to the prompt; /help; unknown /command; Ctrl-C at an empty prompt quits with 0', () => {
    const r = pty([
      ['> ', '/help\r'], ['/drop', '/bogus\r'], ['unknown command /bogus', 'Who is Moses?\r'], ['', '\x03'],
      ['[stopped]', 'And Aaron?\r'], ['', '\x03'], ['[stopped]', '\x03'],
    ], ['chat', dir, '-n', '-1', '--device', 'cpu', '-t', '0.8']);
    expect({ ok: r.ok, out: r.out }).toEqual({ ok: true, out: expect.any(String) });
    expect(r.code).toBe(0);
    expect(r.out).toContain('/reset');
    expect(r.out).not.toContain('internal error');
    expect(r.out).not.toContain('error:');
  }, 180_000);

  test('Ctrl-D quits with 0', () => {
    const r = pty([['> ', '\x04']], ['chat', dir, '--device', 'cpu']);
    expect(r.ok).toBe(true);
    expect(r.code).toBe(0);
  }, 120_000);

  test('piped: /help and unknown commands are not model input; a recurrent model chats past --ctx', () => {
    const turns = Array.from({ length: 4 }, (_, i) => `Turn ${i}: who begat whom?`);
    const r = piped(['chat', dir, '--ctx', '16', '-n', '8', '-t', '0', '--device', 'cpu', '--verbose'], ['/help', '/nope', ...turns].join('\n') + '\n');
    expect(r.err).toContain('/drop');
    expect(r.err).toContain('unknown command /nope');
    expect(r.code).toBe(0);
    expect(r.err.match(/chat: \d+ tokens of state reused/g)).toHaveLength(turns.length);   // every turn answered
    expect(Number([...r.err.matchAll(/chat: (\d+) tokens of state reused/g)].at(-1)![1])).toBeGreaterThan(16);
    expect(r.err).not.toContain('does not fit');
  }, 180_000);
});

describe.skipIf(!llama)('fla chat: an attention model at a full context', () => {
  test('says so and offers /drop and /reset instead of exiting; /drop sends the message again', () => {
    const dir = withTemplate(llama!);
    const long = 'And the LORD spake unto Moses, saying, Speak unto the children of Israel';
    const r = piped(['chat', dir, '--ctx', '64', '-n', '8', '-t', '0', '--device', 'cpu'], `${long}\n${long}\n/drop\n${long}\n/reset\n`);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/does not fit the context of 64 tokens: \/drop drops the oldest turns and sends your message, \/reset starts over/);
    expect(r.out.split('\n').filter(s => s !== undefined)).toHaveLength(4);   // replies to the 1st, the /drop resend, and after /reset
  }, 180_000);
});
