#!/usr/bin/env python3
"""lean: what a check costs (CPU, wall time, memory), side by side for two builds of the tool.

Four cases, each bounded, on loopback or inside a network namespace this script creates:

- offline: the default run against this machine's own resolver (`--format json`), N runs;
- resolver: a real unbound inside a namespace that answers NXDOMAIN at once, behind nftables rules
  that drop CHAOS-class queries (`version.bind`, `id.server`, ...) and reject TCP/53; the same
  unbound on a second port without the rules is the plain resolver; `dig` on both for reference;
- scale: N endpoints whose names resolve (dnsmasq on loopback) and whose port refuses: wall, CPU
  and peak RSS for N = 1,000 and 5,000, and the cost per endpoint;
- healthy: the full check of `bench/netbench.rs`'s lab (eight endpoints behind delay lines, TLS
  and HTTP answered), whose every check passes: CPU per run (the lab is held up with
  `NETBENCH_HOLD=1`; `LEAN_NETBENCH` names the netbench binary, default the release build's);
- serve: `serve` on loopback with 10,000 connections that send half a request head and then
  nothing: the exporter's RSS, how many it holds, and the latency of `GET /metrics` meanwhile;
- instructions: the user-space instructions of `--version`, of the fixed cost of a run, of the
  offline run and of the scale case at N = 200 and 1,000 (the cost per endpoint), counted by
  valgrind: a shared machine's CPU milliseconds spread by a third, these by a fraction of a
  percent.

Run as root (namespaces, nftables): `sudo bench/lean.sh > lean-report.md`. Environment:
LEAN_BEFORE / LEAN_AFTER (the two binaries; LEAN_BEFORE may be empty), LEAN_SHIPPED (optional: a
third contender, the same sources built with `--profile dist` as the package ships them; the
figures of every case then show what the installed binary costs), LEAN_RUNS (default 30),
LEAN_SCALE_RUNS (runs per N in the scale case, default 3), LEAN_CASES (default "offline resolver
scale serve"; "healthy" and "instructions" on request).
"""

import json
import os
import shlex
import signal
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

RUNS = int(os.environ.get("LEAN_RUNS", "30"))
SCALE_RUNS = int(os.environ.get("LEAN_SCALE_RUNS", "3"))
CASES = os.environ.get("LEAN_CASES", "offline resolver scale serve").split()
NS = "nc-lean"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def pct(values, p):
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def timed(argv, env=None):
    """Runs argv once: (wall ms, CPU ms user+system, max RSS KiB, exit code, stdout, minor page
    faults). The faults count the pages the run touched first (each zeroed or copied for it); on
    this virtual machine a fault costs some microseconds, and the count repeats from run to run
    where the CPU time does not."""
    start = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = (time.perf_counter() - start) * 1000
    p.returncode = os.waitstatus_to_exitcode(status)
    cpu = (ru.ru_utime + ru.ru_stime) * 1000
    return wall, cpu, ru.ru_maxrss, p.returncode, out, ru.ru_minflt


def serve_timings():
    """`lean.py --inside`: the timer inside a namespace. It runs each command it is sent (one JSON
    argv per line) through `timed` and answers with the figures, one JSON line each."""
    for line in sys.stdin:
        w, c, m, code, out, faults = timed(json.loads(line))
        print(json.dumps([w, c, m, code, out.decode("utf-8", "replace"), faults]), flush=True)


class Inside:
    """Times commands from inside the namespace `ns`. `ip netns exec` costs about 3 ms of CPU (it
    remounts /sys) and has a spread of its own; started once here, it is in no figure."""

    def __init__(self, ns):
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable,
                                   os.path.abspath(__file__), "--inside"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def timed(self, argv, env=None):
        self.p.stdin.write(json.dumps(argv) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise SystemExit("lean: the timer inside the namespace stopped")
        w, c, m, code, out, faults = json.loads(line)
        return w, c, m, code, out.encode(), faults

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def empty_series():
    return {"wall": [], "cpu": [], "rss": [], "codes": [], "outs": [], "faults": []}


def record(s, figures):
    for key, value in zip(("wall", "cpu", "rss", "codes", "outs", "faults"), figures):
        s[key].append(value)


def series(argv, runs, env=None, timer=timed):
    s = empty_series()
    for _ in range(runs):
        record(s, timer(argv, env))
    return s


def alternating(argv_of, runs, timer=timed):
    """Each build's `argv_of(tool)`, the builds taking turns, `runs` times: a drift of the
    machine's load (or of its resolver) then weighs on every build alike. {name: series}."""
    out = {name: empty_series() for name, _ in tools()}
    for _ in range(runs):
        for name, tool in tools():
            record(out[name], timer(argv_of(tool)))
    return out


def row(label, s):
    w, c = s["wall"], s["cpu"]
    return (
        f"| {label} | {pct(w, 50):.1f} | {pct(w, 95):.1f} | {pct(w, 95) / pct(w, 50):.2f} "
        f"| {statistics.median(c):.1f} | {max(w):.1f} | {statistics.median(s['faults']):.0f} |"
    )


HEADER = ("| contender | wall p50 ms | wall p95 ms | p95/p50 | CPU median ms | wall max ms "
          "| page faults, median |\n| --- | --- | --- | --- | --- | --- | --- |")


def tools():
    out = []
    for name in ("LEAN_BEFORE", "LEAN_AFTER", "LEAN_SHIPPED"):
        path = os.environ.get(name, "")
        if path:
            out.append((name.removeprefix("LEAN_").lower(), path))
    return out


def products(outs):
    """The `filter` named by the dns checks of each run: one set per run."""
    named = []
    for raw in outs:
        try:
            r = json.loads(raw)
        except ValueError:
            continue
        named.append(
            sorted({str(c["data"].get("filter")) for c in r["checks"] if c["probe"] == "dns"})
        )
    return named


def offline():
    print("\n### Offline: the default run against this machine's resolver\n")
    print(f"{RUNS} runs each, `bmw-netcheck --format json`, the builds alternating (a drift of "
          "the machine's load or of its resolver then weighs on both alike).\n")
    print(HEADER)
    # The fixed cost (no network at all) shows a change the resolver's noise would hide.
    variants = [("default run", []), ("`--skip dns`", ["--skip", "dns"]),
                ("fixed cost (`--only storage`)", ["--only", "storage"])]
    for label, extra in variants:
        runs = alternating(lambda tool: [tool, "--format", "json", "--no-history"] + extra, RUNS)
        for name, _ in tools():
            print(row(f"{name}: {label}", runs[name]))


UNBOUND_CONF = """server:
    interface: 127.0.0.1@53
    interface: 127.0.0.1@5353
    do-daemonize: no
    use-syslog: no
    logfile: ""
    username: ""
    chroot: ""
    directory: "{d}"
    pidfile: "{d}/unbound.pid"
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    local-zone: "." static
"""


def nft_rules():
    # TCP/53 refused; a UDP/53 query whose question class is CHAOS (3) dropped. The class is the
    # 16 bits after the name and type; names of the diagnostic queries are at most 64 bytes.
    rules = ["add table inet lean", "add chain inet lean input { type filter hook input priority 0 ; }"]
    rules.append("add rule inet lean input tcp dport 53 reject with tcp reset")
    for qlen in range(2, 65):
        bit = (8 + 12 + qlen + 2) * 8
        rules.append(f"add rule inet lean input udp dport 53 @th,{bit},16 0x0003 drop")
    return "\n".join(rules) + "\n"


def in_ns(argv):
    return ["ip", "netns", "exec", NS] + argv


def resolver_case():
    print("\n### Resolver that ignores CHAOS queries and refuses TCP\n")
    subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    d = tempfile.mkdtemp(prefix="lean-unbound")
    ub = None
    try:
        subprocess.run(in_ns(["ip", "link", "set", "lo", "up"]), check=True)
        subprocess.run(in_ns(["nft", "-f", "-"]), input=nft_rules().encode(), check=True)
        with open(f"{d}/unbound.conf", "w") as f:
            f.write(UNBOUND_CONF.format(d=d))
        ub = subprocess.Popen(in_ns(["unbound", "-d", "-c", f"{d}/unbound.conf"]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            r = subprocess.run(in_ns(["dig", "@127.0.0.1", "-p", "5353", "+tries=1", "+time=1",
                                      "version.bind", "CH", "TXT", "+short"]),
                               capture_output=True, text=True)
            if r.stdout.strip():
                break
            time.sleep(0.1)
        chk = subprocess.run(in_ns(["dig", "@127.0.0.1", "+tries=1", "+time=1", "version.bind",
                                    "CH", "TXT"]), capture_output=True, text=True)
        tcp = subprocess.run(in_ns(["dig", "@127.0.0.1", "+tcp", "+tries=1", "+time=1",
                                    "cocoapi.bmwgroup.com"]), capture_output=True, text=True)
        print(f"Check of the rules: `dig version.bind CH TXT` on port 53 -> "
              f"{'no answer' if 'timed out' in chk.stdout else 'answered'}; over TCP -> "
              f"{'refused' if 'refused' in tcp.stdout or 'connection' in tcp.stdout else 'answered'}; "
              f"port 5353 (plain) answers `{r.stdout.strip()}`.\n")
        print(f"{RUNS} runs each, every contender started by a timer that runs inside the namespace "
              "(no `ip netns exec` in any figure).\n")
        print(HEADER)
        inside = Inside(NS)
        for port, label in ((53, "filtered"), (5353, "plain")):
            dig = series(["dig", "@127.0.0.1", "-p", str(port), "+tries=1", "+time=5",
                          "cocoapi.bmwgroup.com"], RUNS, timer=inside.timed)
            print(row(f"`dig` (one A query), {label} resolver", dig))
            for name, tool in tools():
                s = series([tool, "--format", "json", "--no-history", "--resolver",
                            f"127.0.0.1:{port}"], RUNS, timer=inside.timed)
                print(row(f"{name}: default run, {label} resolver", s))
                named = products(s["outs"])
                same = all(len(n) == 1 for n in named)
                log(f"{name} {label}: products per run {named[:3]} ... one per run: {same}")
                print(f"|  ↳ filter named on the dns checks: {'one product in every run' if same else 'differs between checks'} (`{named[0][0] if named and named[0] else '-'}`) | | | | | |")
        inside.close()
    finally:
        if ub:
            ub.terminate()
            ub.wait()
        subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL)
        shutil.rmtree(d, ignore_errors=True)


class ScaleLab:
    """dnsmasq on loopback answering every `*.scale.netcheck.lan` name with 127.0.0.1, and a
    loopback port that refuses connections; `profile(n)` writes a profile of n such endpoints."""

    def __enter__(self):
        self.d = tempfile.mkdtemp(prefix="lean-scale")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        conf = (f"no-resolv\nno-hosts\nlisten-address=127.0.0.1\nport={self.port}\n"
                "bind-interfaces\naddress=/scale.netcheck.lan/127.0.0.1\n")
        with open(f"{self.d}/dnsmasq.conf", "w") as f:
            f.write(conf)
        self.dm = subprocess.Popen(["dnsmasq", "--keep-in-foreground",
                                    f"--conf-file={self.d}/dnsmasq.conf",
                                    f"--pid-file={self.d}/pid"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        self.refuse = closed.getsockname()[1]
        closed.close()
        return self

    def argv(self, tool, n):
        """The tool's command for a profile of n endpoints (written once per n)."""
        path = f"{self.d}/p{n}.toml"
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write('name = "scale"\n\n')
                for i in range(n):
                    f.write(f'[[endpoint]]\nname = "e{i}"\nhost = "e{i}.scale.netcheck.lan"\n'
                            f'port = {self.refuse}\npublic = false\n\n')
        return [tool, "--profile", path, "--resolver", f"127.0.0.1:{self.port}", "--format",
                "json", "--timeout", "10s", "--deadline", "60s", "--no-history"]

    def __exit__(self, *_):
        self.dm.terminate()
        self.dm.wait()
        shutil.rmtree(self.d, ignore_errors=True)


def scale_case():
    print("\n### N endpoints whose names resolve and whose port refuses\n")
    print(f"{SCALE_RUNS} runs of each build at each N, the builds and the sizes taking turns (a drift "
          "of the machine's load then weighs on every figure alike).\n")
    with ScaleLab() as lab:
        print(f"| contender | N | wall ms (median of {SCALE_RUNS}) | CPU ms (min–max) | peak RSS MiB (min–max) "
              "| page faults, median | queries the resolver's socket dropped, per run "
              "|\n| --- | --- | --- | --- | --- | --- | --- |")
        runs = {(name, n): [] for name, _ in tools() for n in (1000, 5000)}
        drops = {key: [] for key in runs}
        for _ in range(SCALE_RUNS):
            for n in (1000, 5000):
                for name, tool in tools():
                    before = udp_counters()
                    # The output is dropped at once: a child forked while this process holds
                    # megabytes of earlier outputs reports them in its own peak RSS.
                    w, c, m, code, _, faults = timed(lab.argv(tool, n))
                    runs[(name, n)].append((w, c, m, code, faults))
                    after = udp_counters()
                    drops[(name, n)].append(after.get("UdpRcvbufErrors", 0)
                                            - before.get("UdpRcvbufErrors", 0))
        per = {}
        for (name, n), rs in runs.items():
            w, c, m, f = (statistics.median(r[i] for r in rs) for i in (0, 1, 2, 4))
            per[(name, n)] = (c, m / 1024, f)
            cpus = sorted(r[1] for r in rs)
            rss = sorted(r[2] / 1024 for r in rs)
            print(f"| {name} | {n} | {w:.0f} | {c:.0f} ({cpus[0]:.0f}–{cpus[-1]:.0f}) "
                  f"| {m / 1024:.1f} ({rss[0]:.1f}–{rss[-1]:.1f}) | {f:.0f} "
                  f"| {', '.join(map(str, drops[(name, n)]))} |")
        print()
        for name, _ in tools():
            (c1, m1, f1), (c5, m5, f5) = per[(name, 1000)], per[(name, 5000)]
            print(f"- {name}: per endpoint (N = 5,000 less N = 1,000, over 4,000) "
                  f"{(m5 - m1) * 1024 / 4000:.1f} KiB of RSS, {(c5 - c1) / 4000:.3f} ms of CPU "
                  f"and {(f5 - f1) / 4000:.2f} page faults")


def instructions(argv):
    """The user-space instructions one run of argv executes, counted by valgrind (callgrind)."""
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + argv,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in p.stderr.splitlines():
        if "refs:" in line:
            return int(line.split("refs:")[1].strip().replace(",", ""))
    raise SystemExit(f"lean: valgrind counted nothing for {argv[0]}: {p.stderr[-300:]}")


def instructions_case():
    print("\n### Instructions: the figure a shared machine does not blur\n")
    print("User-space instructions of one run, counted by valgrind (callgrind); the kernel's work "
          "(sockets, page faults) is not in them. The same binary and input give the same count "
          "within a fraction of a percent, where CPU milliseconds on this machine spread by a "
          "third.\n")
    print("| contender | `--version` | fixed cost (`--only storage`) | offline default run "
          "| N = 200 | N = 1,000 | per endpoint |\n| --- | --- | --- | --- | --- | --- | --- |")
    with ScaleLab() as lab:
        for name, tool in tools():
            v = instructions([tool, "--version"])
            fixed = instructions([tool, "--only", "storage", "--format", "json", "--no-history"])
            off = instructions([tool, "--format", "json", "--no-history"])
            small, large = instructions(lab.argv(tool, 200)), instructions(lab.argv(tool, 1000))
            print(f"| {name} | {v / 1e6:.2f} M | {fixed / 1e6:.2f} M | {off / 1e6:.2f} M "
                  f"| {small / 1e6:.1f} M | {large / 1e6:.1f} M | {(large - small) / 800 / 1e3:.0f} k |")


def healthy_case():
    print("\n### The healthy full check on the bench lab\n")
    bench = os.environ.get("LEAN_NETBENCH", "target/release/examples/netbench")
    env = dict(os.environ, NETBENCH_HOLD="1", NETBENCH_TOOL=tools()[-1][1])
    lab = subprocess.Popen([bench], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                           text=True)
    try:
        # The first line is the tool's command in the client namespace.
        argv = shlex.split(lab.stdout.readline())
        if len(argv) < 5 or argv[:3] != ["ip", "netns", "exec"]:
            raise SystemExit(f"lean: netbench printed no command (got {argv!r})")
        print(f"{RUNS} runs of `BIN {' '.join(argv[5:])}` in the lab's client namespace "
              f"(`{argv[3]}`), the builds alternating, each started by a timer that runs inside "
              "the namespace (no `ip netns exec` in any figure); CPU from `wait4`.\n")
        print("| contender | CPU median ms | CPU min ms | CPU max ms | wall p50 ms | page faults, "
              "median | exit codes |\n| --- | --- | --- | --- | --- | --- | --- |")
        inside = Inside(argv[3])
        runs = alternating(lambda tool: [tool] + argv[5:], RUNS, timer=inside.timed)
        inside.close()
        for name, _ in tools():
            c, codes = runs[name]["cpu"], sorted(set(runs[name]["codes"]))
            print(f"| {name} | {statistics.median(c):.1f} | {min(c):.1f} | {max(c):.1f} "
                  f"| {pct(runs[name]['wall'], 50):.0f} | {statistics.median(runs[name]['faults']):.0f} "
                  f"| {', '.join(map(str, codes))} |")
    finally:
        lab.send_signal(signal.SIGTERM)
        lab.wait()


def udp_counters():
    """The kernel's UDP counters (`nstat`): UdpRcvbufErrors counts datagrams dropped on a full
    receive queue, here the resolver's, each a query hickory sends again after 333 ms."""
    try:
        out = subprocess.run(["nstat", "-az", "UdpRcvbufErrors"], capture_output=True, text=True).stdout
    except OSError:
        return {}
    return {f[0]: int(f[1]) for f in (line.split() for line in out.splitlines())
            if len(f) >= 2 and not f[0].startswith("#")}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def metrics_latency(addr, n=20):
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        try:
            with urllib.request.urlopen(f"http://{addr}/metrics", timeout=30) as r:
                r.read()
            lat.append((time.perf_counter() - t) * 1000)
        except OSError:
            lat.append(float("inf"))
    return lat


def serve_case():
    print("\n### serve with 10,000 connections that send half a request\n")
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    d = tempfile.mkdtemp(prefix="lean-serve")
    with open(f"{d}/p.toml", "w") as f:
        f.write('name = "serve"\n\n[[endpoint]]\nname = "api"\nhost = "127.0.0.1"\nport = 9\npublic = false\n')
    print("| contender | RSS before MiB | RSS with 10,000 half requests MiB | connections held after 2 s | held after 8 s | RSS after 8 s MiB | `/metrics` p50 / max ms meanwhile |\n| --- | --- | --- | --- | --- | --- | --- |")
    for name, tool in tools():
        env = dict(os.environ, XDG_STATE_HOME=d)
        p = subprocess.Popen([tool, "serve", "--listen", "127.0.0.1:0", "--profile", f"{d}/p.toml",
                              "--no-history"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             env=env, text=True)
        line = p.stderr.readline()
        if "http://" not in line:  # the allocator restart prints again
            line = p.stderr.readline()
        addr = line.split("http://")[1].split("/")[0]
        host, port = addr.rsplit(":", 1)
        time.sleep(0.5)
        metrics_latency(addr, 3)
        before = rss_kib(p.pid)
        socks = []
        for _ in range(10000):
            s = socket.socket()
            s.setblocking(True)
            try:
                s.connect((host, int(port)))
                s.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            except OSError:
                pass
            socks.append(s)
        time.sleep(2)
        during = rss_kib(p.pid)
        lat = metrics_latency(addr)
        held2 = held(socks)
        time.sleep(6)
        held8 = held(socks)
        after = rss_kib(p.pid)
        for s in socks:
            s.close()
        p.terminate()
        p.wait()
        print(f"| {name} | {before / 1024:.1f} | {during / 1024:.1f} | {held2} | {held8} | {after / 1024:.1f} "
              f"| {pct(lat, 50):.1f} / {max(lat):.1f} |")
    shutil.rmtree(d, ignore_errors=True)


def held(socks):
    """Connections the server still holds: not closed by it (no EOF or reset waiting)."""
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            data = s.recv(1, socket.MSG_PEEK)
            if data:
                n += 1
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def main():
    print("## Lean and steady: CPU, tail latency, growth, idle connections\n")
    print(f"Load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; contenders: "
          + ", ".join(f"{n} = `{t}`" for n, t in tools()))
    for case in CASES:
        log(f"lean: {case}")
        cases = {"offline": offline, "resolver": resolver_case, "scale": scale_case,
                 "serve": serve_case, "healthy": healthy_case, "instructions": instructions_case}
        cases[case]()
    print(f"\nLoad average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--inside"]:
        serve_timings()
    else:
        main()
