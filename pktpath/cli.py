"""The pktpath command: Linux habits over gRPC, and the launcher of every service.

    pktpath demo               walk one UDP datagram down the TX path and up the RX path
    pktpath decode HEX         decode an Ethernet frame header by header
    pktpath up [TOPOLOGY]      run every layer of every host as local processes until Ctrl-C
    pktpath ping DEST          ping(8) from a host of the running topology (--on A; Ctrl-C stops)
    pktpath send DEST PORT     send UDP datagrams from a host (--on A)
    pktpath recv PORT          receive UDP datagrams on a host (--on B)
    pktpath tcpdump            watch a host's frames (--on A, -i eth0, -c N, -w file.pcap) or a layer's (-i B:l3)
    pktpath ip neigh|route|addr, pktpath netstat, pktpath ss, pktpath iptables, pktpath ip6tables,
    pktpath ifconfig           (--on HOST)
    pktpath ethtool -S|-g HOST:DEV   a NIC's driver statistics or ring sizes
    pktpath trace [FILTER]     every event of the packets FILTER matches, as pwru prints them (tcp port 80, host A...)
    pktpath drops              drops by reason and place as they happen, as dropwatch shows them
    pktpath serve LAYER        run one layer's gRPC service (nic, softirq, l2, l3, l4, socket, orchestrator)
    pktpath compose [TOPOLOGY] the topology as a docker-compose.yml; pktpath health TARGET: a service's health
"""

import argparse
import os
import signal
import sys
from pathlib import Path

from pktpath.pb import SlowProtobufBackend, require_upb


def _cmd_serve(args) -> int:
    from pktpath.config import Addresses
    from pktpath.service import ServiceContext, serve
    from pktpath.topology import TopologyError, load

    host = args.host or ""
    if not host and args.layer != "orchestrator":  # a layer needs its host; without one, the draft
        return serve(args.layer, args.listen or "127.0.0.1:0")
    try:
        topo = load(args.topology)
        if host:
            topo.host(host)
    except TopologyError as exc:
        print(f"pktpath serve: {exc}", file=sys.stderr)
        return 2
    addrs = Addresses(topo, args.base_port, run_id=args.run_id or "")
    ctx = ServiceContext(host, topo, addrs, addrs.run)
    return serve(args.layer, args.listen or addrs.listen(host, args.layer), ctx)


def _cmd_compose(args) -> int:
    """The topology as a docker-compose.yml, on stdout or into a file."""
    from pktpath.tools.compose import render
    from pktpath.topology import TopologyError, load

    try:
        text = render(load(args.topology), args.base_port, str(args.tls.resolve()) if args.tls else None,
                      tunnels=args.tunnels)
    except TopologyError as exc:
        print(f"pktpath compose: {exc}", file=sys.stderr)
        return 2
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _cmd_kube(args) -> int:
    """The topology as a kustomize directory of Kubernetes manifests."""
    from pktpath.tools.kube import Resources, render, write
    from pktpath.topology import TopologyError, load

    try:
        files = render(load(args.topology), args.base_port, Resources(args.image, args.cpu, args.memory,
                                                                      args.cpu_limit, args.memory_limit))
    except (TopologyError, ValueError) as exc:
        print(f"pktpath kube: {exc}", file=sys.stderr)
        return 2
    write(files, args.output)
    print(f"wrote {', '.join(sorted(files))} to {args.output}")
    return 0


def _cmd_health(args) -> int:
    """grpc_health_probe's job: exit 0 when the service at TARGET says SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from pktpath.config import channel

    with channel(args.target) as ch:
        try:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=args.service),
                                                          timeout=args.timeout)
        except grpc.RpcError as exc:
            print(f"{args.target}: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{args.target}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def _cmd_up(args) -> int:
    from pktpath.service import sleep_until_terminated, terminate_on_signal
    from pktpath.supervisor import Supervisor
    from pktpath.topology import TopologyError, load

    try:
        topo = load(args.topology)
    except TopologyError as exc:
        print(f"pktpath up: {exc}", file=sys.stderr)
        return 2
    try:
        sup = Supervisor(topo, args.base_port, log_dir=args.log_dir, only=args.only)
    except ValueError as exc:
        print(f"pktpath up: --only {exc}", file=sys.stderr)
        return 2
    hosts = [h.name for h in topo.hosts if not args.only or h.name in args.only]
    print(f"starting topology {topo.name!r}: {len(hosts)} hosts x 6 layers ...", flush=True)
    started = False
    try:
        with terminate_on_signal():
            sup.start()
            started = True
            for row in sup.table():
                print(row)
            if not args.only or "orchestrator" in args.only:
                print(f"dashboard: http://{sup.addrs.http('', 'orchestrator')}/", end="  ")
            if hosts:
                print(f"metrics: http://{sup.addrs.http(hosts[0], 'nic')}/metrics (each service: its port + 500)",
                      end="")
            print(flush=True)
            sup.watch(lambda line: print(f"pktpath up: {line}", file=sys.stderr, flush=True))
            print("all healthy; Ctrl-C stops everything", flush=True)
            sleep_until_terminated()
    except (RuntimeError, TimeoutError) as exc:
        print(f"pktpath up: {exc}", file=sys.stderr)
    finally:
        failed = [(h, layer, rc) for h, layer, rc in sup.stop() if rc != 0]
    for host, layer, rc in failed:
        print(f"{host}/{layer} {Supervisor.how(rc)}", file=sys.stderr)
    print("stopped", flush=True)
    return 1 if failed or not started or sup.deaths else 0


BASE_PORT_ENV = "PKTPATH_BASE_PORT"


def _find_run(args):
    """(base port, the run there or None) for a client command: --base-port, else
    $PKTPATH_BASE_PORT, else the one topology this user runs (several: say which there are,
    and stop), else the default layout."""
    from pktpath.config import DEFAULT_BASE_PORT
    from pktpath.supervisor import runs

    live = runs()
    base = args.base_port
    if base is None and os.environ.get(BASE_PORT_ENV):
        try:
            base = int(os.environ[BASE_PORT_ENV])
        except ValueError:
            raise SystemExit(f"pktpath {args.command}: {BASE_PORT_ENV}={os.environ[BASE_PORT_ENV]!r} is not a "
                             f"port number") from None
    if base is None:
        if len(live) > 1:
            raise SystemExit(f"pktpath {args.command}: {len(live)} topologies are running: "
                             + ", ".join(f"{r.topology} (--base-port {r.base_port})" for r in live)
                             + "; say which with --base-port")
        base = live[0].base_port if live else DEFAULT_BASE_PORT
    return base, next((r for r in live if r.base_port == base), None)


def _running_topology(args):
    """(topology, addresses) a client command talks to: the run _find_run() finds, its
    topology unless --topology names another (with no run: `default`)."""
    from pktpath.config import Addresses
    from pktpath.topology import TopologyError, load

    base, run = _find_run(args)
    try:
        topo = load(args.topology or (run.topology if run else "default"))
    except TopologyError as exc:
        raise SystemExit(f"pktpath {args.command}: {exc}") from None
    return topo, Addresses(topo, base)


def _run_state(args) -> dict | None:
    base, run = _find_run(args)
    if run is None:
        print(f"pktpath {args.command}: no pktpath up runs on base port {base}", file=sys.stderr)
        return None
    return run.state


def _cmd_status(args) -> int:
    """pktpath status: each service of the running topology, as systemctl status lists units."""
    import time

    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from pktpath.config import channel

    state = _run_state(args)
    if state is None:
        return 3  # systemctl status: not running
    rows = []
    now = time.time()
    for s in state["services"]:
        name = f"{s['host']}/{s['layer']}" if s["host"] else s["layer"]
        try:
            os.kill(s["pid"], 0)
            with channel(s["target"]) as ch:
                reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
            status = "serving" if reply.status == health_pb2.HealthCheckResponse.SERVING else "starting"
        except ProcessLookupError:
            status = "failed" if s["failed"] else "dead"
        except Exception:  # noqa: BLE001 — alive but not answering: that is its state
            status = "unhealthy"
        rows.append({"service": name, "host": s["host"], "layer": s["layer"], "state": status, "pid": s["pid"],
                     "restarts": s["restarts"], "uptime_s": int(now - s["started"])})
    if args.json:
        import json

        print(json.dumps({"topology": state["topology"], "base_port": state["base_port"],
                          "supervisor_pid": state["supervisor_pid"], "services": rows}, separators=(",", ":")))
        return 0
    print(f"topology {state['topology']} on base port {state['base_port']}, supervised by pid "
          f"{state['supervisor_pid']}")
    print(f"{'service':<16}{'state':<12}{'pid':>8}{'restarts':>10}  uptime")
    for r in rows:
        up = r["uptime_s"]
        uptime = f"{up // 3600}h{up // 60 % 60:02d}m{up % 60:02d}s"
        print(f"{r['service']:<16}{r['state']:<12}{r['pid']:>8}{r['restarts']:>10}  {uptime}")
    return 0


def _cmd_down(args) -> int:
    """pktpath down: stop the topology pktpath up runs, from any terminal."""
    import time

    from pktpath.supervisor import alive

    state = _run_state(args)
    if state is None:
        return 1
    pid = state["supervisor_pid"]
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print(f"pktpath down: its supervisor (pid {pid}) is gone", file=sys.stderr)
        return 1
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not alive(pid):
            print("stopped")
            return 0
        time.sleep(0.1)
    print(f"pktpath down: pid {pid} still runs after 30 s", file=sys.stderr)
    return 1


def _socket_api(args, host_flag: str):
    """The socket service of --on HOST in the running topology's port layout."""
    from pktpath.client import SocketApi
    from pktpath.topology import TopologyError

    topo, addrs = _running_topology(args)
    host = getattr(args, host_flag) or topo.hosts[0].name
    try:
        topo.host(host)
    except TopologyError as exc:
        raise SystemExit(f"pktpath {args.command}: {exc}") from None
    return SocketApi(addrs.target(host, "socket"))


def _family(args) -> int | None:
    """-4 / -6: AF_INET / AF_INET6; None lets the address choose."""
    return {4: 2, 6: 10}.get(getattr(args, "family", None))


def _check_family(args) -> bool:
    """As ping and nc refuse an address of the other family than -4/-6 ask: the message, False."""
    from pktpath.tools.apps import family_of

    try:
        family_of(args.dest, _family(args))
    except OSError as exc:
        print(f"pktpath {args.command}: {exc.strerror}", file=sys.stderr)
        return False
    return True


def _cmd_ping(args) -> int:
    from pktpath.tools.apps import ping

    if not _check_family(args):
        return 2
    with _socket_api(args, "on") as api:
        try:
            received = ping(api, args.dest, count=args.count, size=args.size, ttl=args.ttl, family=_family(args),
                            interval=args.interval, linger=args.linger, pmtudisc=args.pmtudisc, quiet=args.quiet,
                            flood=args.flood, out=lambda line: print(line, end="" if line in (".", "\b") else "\n",
                                                                     flush=True))
        except OSError as exc:
            print(f"pktpath ping: {exc.strerror or exc} (is `pktpath up` running?)", file=sys.stderr)
            return 2
    return 0 if received else 1


def _cmd_traceroute(args) -> int:
    from pktpath.tools.apps import traceroute

    with _socket_api(args, "on") as api:
        try:
            traceroute(api, args.dest, first_ttl=args.first_ttl, max_ttl=args.max_ttl,
                       queries=args.queries, wait=args.wait, port=args.port, out=lambda line: print(line, flush=True))
        except OSError as exc:
            print(f"pktpath traceroute: {exc.strerror or exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
    return 0  # as traceroute(8): it ran, whether or not the destination answered


def _cmd_tracepath(args) -> int:
    from pktpath.tools.apps import tracepath

    with _socket_api(args, "on") as api:
        try:
            reached = tracepath(api, args.dest, mtu=args.length, max_hops=args.max_hops, port=args.port,
                                out=lambda line: print(line, flush=True))
        except OSError as exc:
            print(f"pktpath tracepath: {exc.strerror or exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
    return 0 if reached else 1


def _cmd_send(args) -> int:
    from pktpath.tools.apps import send

    if not _check_family(args):
        return 2
    with _socket_api(args, "on") as api:
        try:
            sent = send(api, args.dest, args.port, count=args.count, size=args.size, family=_family(args),
                        data=args.data.encode() if args.data is not None else None, sport=args.sport,
                        interval=args.interval)
        except OSError as exc:
            print(f"pktpath send: {exc.strerror or exc} (is `pktpath up` running?)", file=sys.stderr)
            return 2
    return 0 if sent == args.count else 1


def _cmd_run(args) -> int:
    """pktpath run --on B -- python -m http.server: the program's sockets are B's."""
    import pktpath.interpose as interpose

    command = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not command:
        raise SystemExit("pktpath run: no program given (pktpath run --on B -- python prog.py)")
    topo, _ = _running_topology(args)
    with _socket_api(args, "on") as api:
        target = api.target
    env = dict(os.environ)
    site = str(Path(interpose.__file__).parent / "site")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (site, env.get("PYTHONPATH")) if p)
    # `python` is this interpreter, which has pktpath and gRPC, whatever else is on PATH
    env["PATH"] = os.pathsep.join(p for p in (os.path.dirname(sys.executable), env.get("PATH")) if p)
    env[interpose.SOCKET_API_ENV], env[interpose.TOPOLOGY_ENV] = target, topo.source or topo.name
    if not _is_python(command[0], env["PATH"]):
        # any other program would run on this machine's own stack, unnoticed
        print(f"pktpath run: {command[0]} is not a Python program: only Python programs run on a pktpath "
              f"host (their socket module is the host's)", file=sys.stderr)
        return 2
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        print(f"pktpath run: {command[0]}: {exc.strerror}", file=sys.stderr)
        return 127


def _is_python(program: str, path: str) -> bool:
    """A Python interpreter, or a script whose #! line names one."""
    import shutil

    found = shutil.which(program, path=path)
    if found is None:
        return True  # exec says what is wrong
    if os.path.basename(found).startswith("python"):
        return True
    try:
        with open(found, "rb") as f:
            first = f.readline(256)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


def _cmd_recv(args) -> int:
    from pktpath.tools.apps import recv
    from pktpath.tools.capture import hexdump

    n = 0
    with _socket_api(args, "on") as api:
        try:
            for data, (addr, port) in recv(api, args.port, count=args.count, timeout=args.timeout,
                                           family=10 if args.family == 6 else 2):
                n += 1
                print(f"{len(data)} bytes from [{addr}]:{port}" if args.family == 6 else
                      f"{len(data)} bytes from {addr}:{port}", flush=True)
                if args.hex:  # as tcpdump -X shows bytes
                    print("\n".join(hexdump(data)), flush=True)
                else:  # the payload as text, as nc prints it; a byte that is not UTF-8 as \xNN
                    print(data.decode("utf-8", "backslashreplace"), flush=True)
        except OSError as exc:
            print(f"pktpath recv: {exc.strerror or exc} (is `pktpath up` running?)", file=sys.stderr)
            return 2
    return 0 if n else 1


def _cmd_show(args) -> int:
    """ip neigh|route|addr, netstat -s, iptables -L -v, /proc/net/dev of a running host."""
    import grpc

    from pktpath.tools.apps import HostView
    from pktpath.topology import TopologyError

    topo, addrs = _running_topology(args)
    host = args.on or topo.hosts[0].name
    if args.command == "ethtool" and ":" in args.devname:  # ethtool -S B:eth0
        host = args.devname.partition(":")[0]
    try:
        devs = [i.name for i in topo.host(host).interfaces]
    except TopologyError as exc:
        print(f"pktpath {args.command}: {exc}", file=sys.stderr)
        return 2
    view = HostView(addrs, host)
    try:
        if args.command == "ip":
            return _ip(args, view)
        if args.command == "netstat":
            if args.family == 6:  # netstat -s -6: /proc/net/snmp6's groups, then Tcp
                from pktpath.tools.netstat import NETSTAT6_GROUPS, netstat_s6

                counters = view.counters()
                groups = {g: counters.get(g, {}) for g in (args.group or NETSTAT6_GROUPS)}
                lines = [groups] if args.json else netstat_s6(groups)
            elif args.json:
                counters = view.counters()
                lines = [{g: counters.get(g, {}) for g in (args.group or view.NETSTAT_GROUPS)}]
            else:
                lines = view.netstat(tuple(args.group)) if args.group else view.netstat()
        elif args.command == "ss":
            from pktpath.tools.ss import FilterError, ss

            try:
                lines = ss(view, tcp=args.tcp, udp=args.udp, listening=args.listening, all_=args.all,
                           processes=args.processes, extended=args.extended, info=args.info, memory=args.memory,
                           header=not args.no_header,
                           filter_words=args.filter, json=args.json, families=args.families or ())
            except FilterError as exc:
                print(f"pktpath ss: {exc}", file=sys.stderr)
                return 1
        elif args.command == "ethtool":
            from pktpath.tools import ethtool

            dev = args.devname.rpartition(":")[2]
            if dev not in devs:
                print(f"pktpath ethtool: {host} has no interface {dev!r} ({', '.join(devs)})", file=sys.stderr)
                return 2
            iface = next(i for i in topo.host(host).interfaces if i.name == dev)
            try:
                lines = (view.ethtool_ring(dev) if args.ring else view.ethtool_stats(dev) if args.statistics
                         else ethtool.features(view, dev) if args.show_features
                         else ethtool.change(view, dev, args.changes) if args.features
                         else ethtool.settings(dev, topo.peer(host, dev) is not None or bool(iface.attach)))
            except ethtool.EthtoolError as exc:
                print(exc, file=sys.stderr)
                return 1
        elif args.command in ("iptables", "ip6tables"):
            return _iptables(args, view)
        elif args.command == "sysctl":
            from pktpath.sysctl import SysctlError
            from pktpath.tools.sysctl import run

            try:
                lines = run(view, args.words, show_all=args.all, write=args.write or any("=" in w for w in args.words))
            except SysctlError as exc:
                print(f"pktpath sysctl: {exc}", file=sys.stderr)
                return 1
        elif args.command == "tc":
            from pktpath.tools.tc import TcError, run

            try:
                lines = run(view, devs, args.words, json=args.json)
            except TcError as exc:
                print(exc, file=sys.stderr)
                return 2
        else:
            lines = [view.dev_stats(devs)] if args.json else view.dev(devs)
    except grpc.RpcError as exc:
        print(f"pktpath {args.command}: {exc.details()} (is `pktpath up` running?)", file=sys.stderr)
        return 2
    finally:
        view.close()
    if getattr(args, "json", False):  # -j: the records, as ip -j prints them (one JSON document)
        import json

        print(json.dumps(lines[0] if args.command in ("netstat", "ifconfig") else lines, separators=(",", ":")))
        return 0
    for line in lines:
        print(line)
    return 0


def _iptables(args, view) -> int:
    """iptables or ip6tables -L/-A/-I/-D/-F/-Z/-P on the host (pktpath.tools.iptables, one program for
    both families), its messages and exit codes."""
    from pktpath.tools.iptables import IPV4, IPV6, IptablesError, run

    try:
        lines = run(view, args.words, IPV6 if args.command == "ip6tables" else IPV4)
    except IptablesError as exc:
        print(exc, file=sys.stderr)
        return exc.status
    for line in lines:
        print(line)
    return 0


def _ip(args, view) -> int:
    """ip [-4|-6] [-s] [-j] OBJECT [show [dev DEV] | get ADDR]: iproute2's words, from pktpath.tools.iproute."""
    import json

    from pktpath.tools import iproute

    try:
        obj = iproute.object_of(args.words[0])
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 255  # as ip exits on a word it does not know
    rest = args.words[1:]
    verb = rest.pop(0) if rest and rest[0] in ("show", "list", "lst", "get") else "show"
    dev = rest[rest.index("dev") + 1] if "dev" in rest[:-1] else None
    if verb == "get":
        if obj != "route" or not rest:
            print(f'Command "get" is unknown for {obj}, try "pktpath ip help".', file=sys.stderr)
            return 255
        try:
            records = iproute.route_get(view, rest[0])
        except (OSError, ValueError) as exc:
            print(f"RTNETLINK answers: {exc.strerror if isinstance(exc, OSError) else exc}", file=sys.stderr)
            return 2
    else:
        records = {"route": lambda v: iproute.routes(v, args.family or 4),
                   "neigh": lambda v: iproute.neighbours(v, args.family),
                   "addr": lambda v: iproute.addresses(v, args.family, dev),
                   "link": lambda v: iproute.links(v, stats=args.stats),
                   "maddr": lambda v: iproute.maddresses(v, args.family)}[obj](view)
    if dev is not None:
        records = [r for r in records if r.get("dev", r.get("ifname")) == dev]
        if obj in ("route", "neigh"):  # ip route|neigh show dev DEV does not repeat the device
            for r in records:
                r.pop("dev")
    if args.json:
        print(json.dumps(records, separators=(",", ":")))
        return 0
    for rec in records:
        for line in iproute.RENDER[obj](rec):
            print(line)
    return 0


def _cmd_tcpdump(args) -> int:
    import grpc

    from pktpath.config import LAYERS
    from pktpath.pb import trace_pb2
    from pktpath.rpc import l2_pb2_grpc, trace_pb2_grpc
    from pktpath.tools.capture import LINKTYPE_NAMES, PcapFilter, PcapngWriter, PcapWriter, TcpSeqHash
    from pktpath.topology import TopologyError

    try:
        flt = PcapFilter(" ".join(args.expression))
    except ValueError as exc:  # tcpdump: "tcpdump: can't parse filter expression: syntax error", exit 1
        print(f"pktpath tcpdump: {exc}", file=sys.stderr)
        return 1
    seqs = None if args.absolute else TcpSeqHash()
    if args.read:
        return _tcpdump_file(args, flt, seqs)
    topo, addrs = _running_topology(args)
    host, _, point = (args.interface or "").rpartition(":")
    host = host or args.on or topo.hosts[0].name
    try:
        topo.host(host)
    except TopologyError as exc:
        print(f"pktpath tcpdump: {exc}", file=sys.stderr)
        return 2
    request = trace_pb2.CaptureRequest(snaplen=args.snaplen)
    if point in LAYERS:  # a layer's entry: what crosses the boundaries below and above it
        stream = trace_pb2_grpc.TraceStub(addrs.channel(host, point)).Capture(request, timeout=args.timeout)
        below, above = (LAYERS[LAYERS.index(point) - 1] if point != "nic" else "the wire",
                        LAYERS[LAYERS.index(point) + 1] if point != "socket" else "the user")
        what = (f"{host}:{point} (what {below} hands up, In, and {above} hands down, Out; what {point} "
                f"makes itself, such as an ICMP reply, shows at the device)")
        linktype = "per packet"
    else:  # a device's tap at L2, the wire's view
        request.dev = point if point != "any" else ""
        stream = l2_pb2_grpc.L2Stub(addrs.channel(host, "l2")).Capture(request, timeout=args.timeout)
        what, linktype = f"{host}:{point or 'any'}", LINKTYPE_NAMES[1]
    out = open(args.write, "wb") if args.write else None  # noqa: SIM115 (closed below)
    snaplen = args.snaplen or 262144
    pcap = None if out is None else PcapngWriter(out, f"{host}:{point}", snaplen) if point in LAYERS \
        else PcapWriter(out, snaplen)
    n, dropped = 0, 0
    try:
        next(stream)  # the tap is open
        print(f"listening on {what}, link-type {linktype}", file=sys.stderr, flush=True)
        for batch in stream:
            dropped = batch.dropped
            for f in batch.frames:
                if not flt.match(f):
                    continue
                n += 1
                if isinstance(pcap, PcapngWriter):
                    pcap.write(f)
                elif pcap:
                    pcap.write(f.ts_ns, f.data, f.len)
                else:
                    _print_frame(args, f, seqs)
                if args.count and n >= args.count:
                    stream.cancel()
                    break
    except grpc.RpcError as exc:
        if exc.code() not in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED):
            hint = " (is `pktpath up` running?)" if exc.code() == grpc.StatusCode.UNAVAILABLE else ""
            print(f"pktpath tcpdump: {exc.details()}{hint}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        stream.cancel()
    finally:
        if out:
            out.close()
    print(f"{n} packets captured, {dropped} dropped by the capture", file=sys.stderr)
    return 0


def _print_frame(args, f, seqs) -> None:
    """One frame as tcpdump -n prints it: the time, where (a device, a layer's entry), the
    direction, the summary (-e, -v; TCP's sequence numbers relative by seqs, or -S), then
    -X's hex and ASCII (-XX, or a packet the printer gave up on: from the link header)."""
    from pktpath.tools.capture import LINKTYPE_ETHERNET, clock, describe, hexdump

    where = f"{f.dev or '-'} {f.func}" if f.func else f.dev
    direction = f" {'Out' if f.outgoing else 'In '}" if where else ""
    status: dict = {}
    print(f"{clock(f.ts_ns)}{' ' + where if where else ''}{direction} "
          f"{describe(f, link=args.link, verbose=bool(args.verbose), seqs=seqs, status=status)}", flush=True)
    if args.hex:
        ethernet = (f.linktype or LINKTYPE_ETHERNET) == LINKTYPE_ETHERNET
        data = f.data[14:] if ethernet and args.hex < 2 and not status.get("whole") else f.data
        for line in hexdump(data):
            print(line)


def _tcpdump_file(args, flt, seqs) -> int:
    """tcpdump -r FILE: a pcap or pcapng file (pktpath's or anyone's), read by libpcap."""
    from types import SimpleNamespace

    import pcapy

    from pktpath.tools.capture import LINKTYPE_NAMES

    try:
        reader = pcapy.open_offline(args.read)
    except pcapy.PcapError as exc:
        print(f"pktpath tcpdump: {args.read}: {exc}", file=sys.stderr)
        return 1
    linktype = reader.datalink()
    print(f"reading from file {args.read}, link-type {LINKTYPE_NAMES.get(linktype, linktype)}", file=sys.stderr)
    n = 0
    while True:
        header, data = reader.next()
        if header is None:
            break
        sec, usec = header.getts()
        frame = SimpleNamespace(ts_ns=sec * 1_000_000_000 + usec * 1000, data=data, len=header.getlen(),
                                linktype=linktype, dev="", func="", outgoing=False, upper="", saddr="", daddr="")
        if not flt.match(frame):
            continue
        n += 1
        _print_frame(args, frame, seqs)
        if args.count and n >= args.count:
            break
    return 0


def _cmd_trace(args) -> int:
    import grpc

    from pktpath.tools.observe import trace
    from pktpath.rpc import orchestrator_pb2_grpc
    from pktpath.trace import parse_filter

    try:
        flt = parse_filter(args.filter)
    except ValueError as exc:
        print(f"pktpath trace: {exc}", file=sys.stderr)
        return 2
    _, addrs = _running_topology(args)
    orch = orchestrator_pb2_grpc.OrchestratorStub(addrs.channel("", "orchestrator"))
    try:
        trace(orch, flt, lambda line: print(line, flush=True), count=args.count, timeout=args.timeout)
    except grpc.RpcError as exc:
        print(f"pktpath trace: {exc.details()} (is `pktpath up` running?)", file=sys.stderr)
        return 2
    return 0


def _cmd_drops(args) -> int:
    """dropwatch: drops by reason and place each interval; with a filter, each dropped
    packet that matches it (the orchestrator traces them), as trace finds them."""
    import grpc

    from pktpath.rpc import orchestrator_pb2_grpc
    from pktpath.tools.apps import HostView
    from pktpath.tools.observe import drops, filtered_drops
    from pktpath.trace import parse_filter

    try:
        flt = parse_filter(args.filter) if args.filter else None
    except ValueError as exc:
        print(f"pktpath drops: {exc}", file=sys.stderr)
        return 2
    topo, addrs = _running_topology(args)
    views = [HostView(addrs, h.name) for h in topo.hosts if not args.on or h.name == args.on]
    out = lambda line: print(line, flush=True)  # noqa: E731
    try:
        if flt is None:
            drops(views, out, interval=args.interval, rounds=args.rounds)
        else:
            orch = orchestrator_pb2_grpc.OrchestratorStub(addrs.channel("", "orchestrator"))
            filtered_drops(orch, flt, out, count=args.count, timeout=args.timeout, host=args.on)
    except grpc.RpcError as exc:
        print(f"pktpath drops: {exc.details()} (is `pktpath up` running?)", file=sys.stderr)
        return 2
    finally:
        for view in views:
            view.close()
    return 0


def _cmd_drill(args) -> int:
    """packetdrill scripts against a pktpath host it starts (live, or in this process on a
    virtual clock: --deterministic) or the Linux kernel (--kernel): per script, pass or the
    first difference as packetdrill says it, then a count of each."""
    import tempfile

    from pktpath.drill.parser import DrillSyntaxError, parse_file

    try:
        defines = dict(d.split("=", 1) for d in args.define)
    except ValueError:
        print("pktpath drill: -D takes SYMBOL=VALUE", file=sys.stderr)
        return 2
    if args.kernel and args.deterministic:
        print("pktpath drill: --kernel or --deterministic, not both", file=sys.stderr)
        return 2
    if args.on and (args.kernel or args.deterministic):
        print("pktpath drill: --on runs the scripts on a running topology's host: not with --kernel or "
              "--deterministic", file=sys.stderr)
        return 2
    if os.geteuid() != 0 and not (args.deterministic or args.on):
        print("pktpath drill: needs root (a network namespace and a TUN or TAP device for the script's wire)",
              file=sys.stderr)
        return 2
    # kill (SIGTERM) ends the run as Ctrl-C does: the host, its namespace and TAP device go too
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    tolerance = args.tolerance_usecs or (LIVE_TOLERANCE_USECS if not (args.kernel or args.deterministic)
                                         else KERNEL_TOLERANCE_USECS)
    scripts = []
    for path in args.scripts:
        try:
            scripts.append(parse_file(path))
        except (DrillSyntaxError, OSError) as exc:
            print(exc, file=sys.stderr)
            return 1
    live = None
    if args.on:
        import grpc

        from pktpath.drill.running import RunningHost, RunningHostError
        from pktpath.topology import TopologyError

        topo, addrs = _running_topology(args)
        try:
            live = RunningHost(addrs, topo, args.on, ip_version=args.ip_version)
        except (RunningHostError, TopologyError) as exc:
            print(f"pktpath drill: {exc}", file=sys.stderr)
            return 2
        except grpc.RpcError as exc:
            unavailable = exc.code() == grpc.StatusCode.UNAVAILABLE
            print(f"pktpath drill: {args.on}" + (" does not answer (is the topology up?)" if unavailable else "")
                  + f": {exc.details()}", file=sys.stderr)
            return 2
    elif not (args.kernel or args.deterministic):
        from pktpath.drill.live import LiveHost

        workdir = tempfile.mkdtemp(prefix="pktpath-drill-")
        try:
            live = LiveHost(workdir, args.base_port, log_dir=workdir, ip_version=args.ip_version)
        except (OSError, RuntimeError) as exc:
            print(f"pktpath drill: cannot start the host: {exc}", file=sys.stderr)
            return 2
    if args.jobs < 1 or (args.jobs > 1 and live is None and not (args.kernel or args.deterministic)):
        print("pktpath drill: --jobs is 1 or more, and more than 1 only with --kernel or --deterministic",
              file=sys.stderr)
        return 2
    counts = {"pass": 0, "fail": 0, "unsupported": 0}
    allowed = None
    try:
        if live is not None:
            outcomes = (_drill_live(live, script, tolerance, defines) for script in scripts)
        else:
            from concurrent.futures import ProcessPoolExecutor
            from functools import partial
            from multiprocessing import get_context

            from pktpath.drill.kernel import allow_cubic

            allowed = allow_cubic() if args.kernel else None  # once for every namespace of the run
            run = partial(_drill_fresh, kernel=args.kernel, ip_version=args.ip_version, tolerance=tolerance,
                          defines=defines)
            if args.jobs == 1:
                outcomes = map(run, scripts)
            else:  # a process each: a script's timing is its own, and each names its namespace by its pid
                pool = ProcessPoolExecutor(args.jobs, mp_context=get_context("fork"))
                outcomes = pool.map(run, scripts)
        for script, (outcome, took) in zip(scripts, outcomes):
            counts[outcome.status] += 1
            if outcome.status == "pass":
                print(f"{script.path}: pass ({took:.2f} s)", flush=True)
            elif outcome.status == "unsupported":
                print(f"{script.path}: unsupported: {outcome.message}", flush=True)
            else:
                print(outcome.message, flush=True)
    finally:
        if live is not None:
            live.close()
        if allowed is not None:
            from pktpath.drill.kernel import restore_allowed

            restore_allowed(allowed)
    if len(scripts) > 1:
        print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['unsupported']} unsupported")
    return 0 if counts["pass"] == len(scripts) else 1


def _drill_live(live, script, tolerance: int, defines: dict):
    """One script against the running pktpath host, reset first: (outcome, seconds)."""
    import time

    from pktpath.drill.runner import Runner

    started = time.monotonic()
    live.reset()
    return Runner(script, live, tolerance_usecs=tolerance, defines=defines).run(), time.monotonic() - started


def _drill_fresh(script, *, kernel: bool, ip_version: int, tolerance: int, defines: dict):
    """One script against a host of its own, the kernel's namespace or pktpath on a virtual
    clock: (outcome, seconds)."""
    import time

    from pktpath.drill.runner import Runner

    if kernel:
        from pktpath.drill.kernel import KernelHost as Host
    else:
        from pktpath.drill.local import LocalHost as Host
    started = time.monotonic()
    host = Host(ip_version=ip_version)
    try:
        outcome = Runner(script, host, tolerance_usecs=tolerance, defines=defines).run()
    finally:
        host.close()
    return outcome, time.monotonic() - started


def _ip_version(text: str) -> int:
    """--ip-version: 4 or 6 (packetdrill's ipv4 and ipv6 too)."""
    version = {"4": 4, "6": 6, "ipv4": 4, "ipv6": 6}.get(text.lower())
    if version is None:
        raise argparse.ArgumentTypeError(f"{text!r}: 4 or 6")
    return version


KERNEL_TOLERANCE_USECS = 4000   # packetdrill's
LIVE_TOLERANCE_USECS = 20000    # a packet crosses six processes each way: docs/drill.md has the figures


def _cmd_decode(args) -> int:
    from pktpath.tools.walkthrough import decode_frame

    try:
        frame = bytes.fromhex("".join(args.hex))
    except ValueError as exc:
        print(f"pktpath decode: not hex: {exc}", file=sys.stderr)
        return 2
    for line in decode_frame(frame):
        print(line)
    return 0


def _cmd_demo(args) -> int:
    from pktpath.tools.walkthrough import demo

    for line in demo(payload=b"x" * args.size):
        print(line)
    if args.local_only:
        return 0
    from pktpath.tools.walkthrough import live_demo

    print()
    return 0 if live_demo(args.base_port, out=lambda line: print(line, flush=True)) else 1


def _cmd_copies(args) -> int:
    """How many copies a send makes, measured: every case through local processes; or
    what a running topology has copied so far (--running)."""
    from pktpath.config import DEFAULT_BASE_PORT
    from pktpath.tools.copies import measure, report, running_report

    if args.running:
        for line in running_report(_running_topology(args)[1]):
            print(line)
        return 0

    results = measure(args.base_port or DEFAULT_BASE_PORT + 2000,
                      out=lambda line: print(line, file=sys.stderr, flush=True))
    if args.markdown:  # the docs' tables, after the mark
        md = "\n".join(report(results, as_markdown=True)) + "\n"
        args.markdown.write_text(args.markdown.read_text().split(COPIES_MARK)[0] + COPIES_MARK + "\n\n" + md
                                 if args.markdown.exists() else md)
    for line in report(results):
        print(line)
    return 0


COPIES_MARK = "<!-- pktpath copies: generated below -->"


def parser() -> argparse.ArgumentParser:
    """pktpath's commands and their arguments."""
    from importlib.metadata import version

    from pktpath.config import DEFAULT_BASE_PORT
    from pktpath.service import LAYERS
    from pktpath.topology import builtins

    ap = argparse.ArgumentParser(prog="pktpath", description="The Linux packet path, one gRPC service per layer.")
    ap.add_argument("-V", "--version", action="version", version=f"pktpath {version('pktpath')}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("demo", help="walk one UDP datagram down the TX path and up the RX path")
    p.add_argument("--size", type=int, default=100, help="UDP payload bytes (default 100)")
    p.add_argument("--base-port", type=int, help="port layout base (default: 50000, or the next free layout "
                                                 "1000 ports up)")
    p.add_argument("--local-only", action="store_true", help="only the in-process walk, no services")
    p.set_defaults(func=_cmd_demo)
    p = sub.add_parser("copies", help="measure the COPY/CLONE/DMA of a send, per protocol and size")
    p.add_argument("--base-port", type=int, help="port layout base (default 52000 for the measured cases, "
                                                 "50000 with --running)")
    p.add_argument("--markdown", type=Path, help=f"also write the tables into FILE, after the line {COPIES_MARK}")
    p.add_argument("--running", action="store_true",
                   help="instead: every COPY/CLONE/DMA the running topology (--topology, --base-port) made so far")
    p.add_argument("--topology", help="with --running: the topology's file or name (default: the running one's)")
    p.set_defaults(func=_cmd_copies)
    p = sub.add_parser("compose", help="write a topology as a docker-compose.yml (one container per layer)")
    p.add_argument("topology", nargs="?", default="default", help="topology file or built-in name")
    p.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT, help="port layout base (default 50000)")
    p.add_argument("-o", "--output", type=Path, help="write to FILE (default: stdout)")
    p.add_argument("--tls", type=Path, metavar="DIR", help="services speak TLS to each other, with DIR's cert.pem, "
                                                           "key.pem and ca.pem (mounted in every container)")
    p.add_argument("--tunnels", action="store_true", help="the links between hosts as VXLAN tunnels between their NIC "
                                                          "containers, and no volume shared by two hosts (the admin "
                                                          "token: a secret from pktpath.token)")
    p.set_defaults(func=_cmd_compose)
    p = sub.add_parser("kube", help="write a topology as Kubernetes manifests (a kustomize directory: one Pod "
                                    "per host)")
    p.add_argument("topology", nargs="?", default="default", help="topology file or built-in name")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="the directory to write")
    p.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT, help="port layout base (default 50000)")
    p.add_argument("--image", default="pktpath:latest", help="the image every container runs (default "
                                                             "pktpath:latest)")
    p.add_argument("--cpu", default="50m", help="each container's CPU request (default 50m)")
    p.add_argument("--memory", default="64Mi", help="each container's memory request (default 64Mi)")
    p.add_argument("--cpu-limit", default="1", help="each container's CPU limit (default 1)")
    p.add_argument("--memory-limit", default="512Mi", help="each container's memory limit (default 512Mi)")
    p.set_defaults(func=_cmd_kube)
    p = sub.add_parser("health", help="ask a service's gRPC health check (exit 0: SERVING)")
    p.add_argument("target", help="host:port")
    p.add_argument("--service", default="", help="the service name to ask about (default: the server)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer (default 3)")
    p.set_defaults(func=_cmd_health)
    p = sub.add_parser("up", help="run every service of a topology as local processes until Ctrl-C")
    p.add_argument("topology", nargs="?", default="default",
                   help=f"a topology file, or a built-in one: {', '.join(builtins())} (default: default)")
    p.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT, help="port layout base (default 50000)")
    p.add_argument("--log-dir", type=Path, help="write each service's output to DIR/HOST-LAYER.log")
    p.add_argument("--only", action="append", default=[], metavar="HOST",
                   help="run only this host's six services (repeat for more; 'orchestrator' for it): the others "
                        "run on other machines, at the addresses the topology's `at` or $PKTPATH_AT_<HOST> give; "
                        "default: every host and the orchestrator")
    p.set_defaults(func=_cmd_up)
    def client_args(p, flag=None, dest=None, host_help=None):
        if flag:
            p.add_argument(flag, dest=dest, metavar="HOST", help=host_help)
            if flag == "--on":  # the old name of ping's, send's and traceroute's, still taken
                p.add_argument("--from", dest=dest, metavar="HOST", help=argparse.SUPPRESS)
        p.add_argument("--topology", help="the topology's file or built-in name (default: the running one's)")
        p.add_argument("--base-port", type=int, help=f"the running topology's port layout base (default: "
                                                     f"${BASE_PORT_ENV}, else the one running, else 50000)")

    def family_args(p):
        group = p.add_mutually_exclusive_group()
        group.add_argument("-4", dest="family", action="store_const", const=4, help="IPv4 only")
        group.add_argument("-6", dest="family", action="store_const", const=6, help="IPv6 only")

    p = sub.add_parser("ping", help="ping(8) through a host's ping socket")
    p.add_argument("dest", help="an IPv4 or IPv6 address (an IPv6 one pings over IPv6)")
    family_args(p)
    p.add_argument("-c", "--count", type=int, default=0, help="stop after this many requests (default: Ctrl-C)")
    p.add_argument("-s", "--size", type=int, default=56, help="data bytes after the ICMP header (default 56)")
    p.add_argument("-t", "--ttl", type=int, help="IP_TTL")
    p.add_argument("-i", "--interval", type=float, default=1.0, help="seconds between requests (default 1)")
    p.add_argument("-W", dest="linger", type=float, default=10.0,
                   help="with -c: seconds to wait for the last replies (default 10)")
    p.add_argument("-q", "--quiet", action="store_true", help="only the statistics")
    p.add_argument("-f", "--flood", action="store_true", help="a dot per request, a backspace per reply, "
                                                              "100 a second")
    p.add_argument("-M", dest="pmtudisc", choices=("do", "want", "dont"), help="path MTU discovery (IP_MTU_DISCOVER)")
    client_args(p, "--on", "on", "the host to ping from (default: the first)")
    p.set_defaults(func=_cmd_ping)
    p = sub.add_parser("traceroute", help="traceroute(8) -n: UDP probes with rising TTL from a host")
    p.add_argument("dest", help="an IPv4 address")
    p.add_argument("-f", dest="first_ttl", type=int, default=1, help="the first TTL (default 1)")
    p.add_argument("-m", dest="max_ttl", type=int, default=30, help="the most hops (default 30)")
    p.add_argument("-q", dest="queries", type=int, default=3, help="probes per hop (default 3)")
    p.add_argument("-w", dest="wait", type=float, default=5.0, help="seconds to wait for each answer (default 5)")
    p.add_argument("-p", dest="port", type=int, default=33434, help="the first probe's port (default 33434)")
    client_args(p, "--on", "on", "the host to trace from (default: the first)")
    p.set_defaults(func=_cmd_traceroute)
    p = sub.add_parser("tracepath", help="tracepath(8) -n: the path and its MTU, with Don't Fragment probes")
    p.add_argument("dest", help="an IPv4 address")
    p.add_argument("-l", dest="length", type=int, default=1500, help="the first probes' size (default 1500)")
    p.add_argument("-m", dest="max_hops", type=int, default=30, help="the most hops (default 30)")
    p.add_argument("-p", dest="port", type=int, default=44444, help="the first probe's port (default 44444)")
    client_args(p, "--on", "on", "the host to trace from (default: the first)")
    p.set_defaults(func=_cmd_tracepath)
    p = sub.add_parser("send", help="send UDP datagrams from a host")
    p.add_argument("dest", help="an IPv4 or IPv6 address")
    family_args(p)
    p.add_argument("port", type=int, help="the UDP port")
    p.add_argument("-c", "--count", type=int, default=1, help="datagrams to send (default 1)")
    p.add_argument("-s", "--size", type=int, default=64, help="payload bytes (default 64)")
    p.add_argument("--data", help="send this text instead")
    p.add_argument("--sport", type=int, default=0, help="bind this source port first (default 0: the kernel "
                                                        "picks one at the first send)")
    p.add_argument("-i", "--interval", type=float, default=0.0, help="seconds between datagrams (default 0)")
    client_args(p, "--on", "on", "the sending host (default: the first)")
    p.set_defaults(func=_cmd_send)
    p = sub.add_parser("status", help="each service of the running topology: state, pid, restarts, uptime")
    client_args(p)
    p.add_argument("-j", "--json", action="store_true", help="as JSON with stable field names")
    p.set_defaults(func=_cmd_status)
    p = sub.add_parser("down", help="stop the topology pktpath up runs (from another terminal)")
    client_args(p)
    p.set_defaults(func=_cmd_down)
    p = sub.add_parser("run", help="run an unchanged Python program with its sockets on a host's stack",
                       description="Runs PROGRAM (a Python program: `python -m http.server 8000`) with the "
                                   "socket module's AF_INET sockets, name lookups and select/poll/epoll/selectors "
                                   "going through HOST's stack, as one process of that host.")
    p.add_argument("program", nargs=argparse.REMAINDER, help="-- then the command line")
    client_args(p, "--on", "on", "the host the program runs on (default: the first)")
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("recv", help="receive UDP datagrams on a host")
    p.add_argument("port", type=int, help="the UDP port to bind")
    p.add_argument("-6", dest="family", action="store_const", const=6, default=4,
                   help="bind [::]:PORT (IPv6, and IPv4 as ::ffff:a.b.c.d) instead of 0.0.0.0:PORT")
    p.add_argument("-c", "--count", type=int, default=1, help="datagrams to receive (default 1)")
    p.add_argument("--timeout", type=float, default=30.0, help="give up after this many seconds of silence "
                                                               "(default 30)")
    p.add_argument("-x", "--hex", action="store_true", help="each payload in hex and ASCII, not as text")
    client_args(p, "--on", "on", "the receiving host (default: the first)")
    p.set_defaults(func=_cmd_recv)
    p = sub.add_parser("tcpdump", help="watch a host's frames at its L2 taps or the packets at any layer's "
                                       "entry, or write them to a pcap file")
    p.add_argument("-i", "--interface", metavar="[HOST:]IFACE|HOST:LAYER",
                   help="a device (eth0; default: all), or a layer (B:l3: the packets L2 hands up to B's L3 "
                        "and L4 hands down to it; written as pcapng)")
    p.add_argument("expression", nargs="*", help="a pcap-filter expression, as tcpdump takes it: "
                                                 "host 10.0.0.2 and (tcp port 80 or icmp)")
    p.add_argument("-c", "--count", type=int, default=0, help="stop after this many frames (default: Ctrl-C)")
    p.add_argument("-w", "--write", metavar="FILE", help="write a pcap file (tshark, Wireshark, scapy read it)")
    p.add_argument("-r", "--read", metavar="FILE", help="read frames from a pcap or pcapng file instead")
    p.add_argument("-s", "--snaplen", type=int, default=0, help="bytes kept per frame (default 262144)")
    p.add_argument("-n", dest="numeric", action="store_true", help="addresses as numbers (always so)")
    p.add_argument("-S", dest="absolute", action="store_true", help="absolute TCP sequence numbers (default: "
                                                                    "relative to each connection's first)")
    p.add_argument("-e", dest="link", action="store_true", help="print the link-level header")
    p.add_argument("-v", dest="verbose", action="count", default=0, help="the IP header's fields, checksums")
    p.add_argument("-X", dest="hex", action="count", default=0,
                   help="the packet in hex and ASCII (-XX: with its link-level header)")
    p.add_argument("--timeout", type=float, help="stop after this many seconds")
    client_args(p, "--on", "on", "the host to watch (default: the first)")
    p.set_defaults(func=_cmd_tcpdump)
    p = sub.add_parser("ip", help="a host's routes, neighbours, addresses and links, as ip(8) shows them")
    p.add_argument("words", nargs="+", metavar="OBJECT [COMMAND]",
                   help="route [get ADDR] | neigh | addr | link | maddr, as ip takes them (ip r, ip n show dev eth0)")
    p.add_argument("-s", "--stats", action="store_true", help="with link: each device's statistics")
    p.add_argument("-j", "--json", action="store_true", help="as ip -j: JSON with iproute2's field names")
    p.add_argument("-4", dest="family", action="store_const", const=4, help="IPv4 only (ip route's default)")
    p.add_argument("-6", dest="family", action="store_const", const=6, help="IPv6 only: ip -6 addr, ip -6 route")
    client_args(p, "--on", "on", "the host (default: the first)")
    p.set_defaults(func=_cmd_show)
    p = sub.add_parser("netstat", help="a host's counters in netstat -s's words (Ip, Icmp, Tcp, Udp, TcpExt, "
                                       "IpExt, and pktpath's Drops by reason)")
    p.add_argument("group", nargs="*", help="only these groups (e.g. Udp Softnet Hop; default: netstat -s's and "
                                            "Drops)")
    p.add_argument("-s", "--statistics", action="store_true", help="the statistics (always so: the one view)")
    p.add_argument("-j", "--json", action="store_true", help="as JSON with stable field names")
    p.add_argument("-4", "--inet", dest="family", action="store_const", const=4, help="IPv4's (the default)")
    p.add_argument("-6", "--inet6", dest="family", action="store_const", const=6,
                   help="IPv6's, as netstat -s -6 prints /proc/net/snmp6: Ip6, Icmp6, Udp6, UdpLite6, then Tcp")
    client_args(p, "--on", "on", "the host (default: the first)")
    p.set_defaults(func=_cmd_show)
    p = sub.add_parser("ss", help="a host's sockets, as ss(8) shows them: -t -u -l -a -p -e -i -m, and its filters")
    p.add_argument("filter", nargs="*", help="ss's filter: state established, dport = :80, src 10.0.0.1, "
                                             "joined by and/or/not and ( )")
    p.add_argument("-t", "--tcp", action="store_true", help="TCP sockets")
    p.add_argument("-u", "--udp", action="store_true", help="UDP sockets (neither -t nor -u: both)")
    p.add_argument("-4", "--ipv4", dest="families", action="append_const", const="inet",
                   help="only AF_INET sockets (a dual-stack AF_INET6 listener is -6's)")
    p.add_argument("-6", "--ipv6", dest="families", action="append_const", const="inet6", help="only AF_INET6 sockets")
    p.add_argument("-f", "--family", dest="families", action="append",
                   choices=("inet", "inet6", "link", "unix", "netlink", "tipc", "vsock", "xdp"),
                   help="only sockets of FAMILY (of several, the last given is the one ss dumps)")
    p.add_argument("-l", "--listening", action="store_true", help="only listening (and unconnected UDP) sockets")
    p.add_argument("-a", "--all", action="store_true", help="every socket (default: the connected ones)")
    p.add_argument("-n", "--numeric", action="store_true", help="numeric addresses (always so)")
    p.add_argument("-p", "--processes", action="store_true", help="the process holding each socket")
    p.add_argument("-e", "--extended", action="store_true", help="the owner's uid and the socket's sk")
    p.add_argument("-i", "--info", action="store_true", help="each connection's TCP state: cwnd, rtt, rto, mss")
    p.add_argument("-m", "--memory", action="store_true", help="each socket's memory, as skmem:(r,rb,t,tb,...)")
    p.add_argument("-H", "--no-header", action="store_true", help="no header line")
    p.add_argument("-j", "--json", action="store_true", help="as JSON with stable field names")
    client_args(p, "--on", "on", "the host (default: the first)")
    p.set_defaults(func=_cmd_show)
    for prog, what, protos in (("iptables", "", "icmp"), ("ip6tables", "IPv6 ", "icmpv6")):  # one program, two families
        p = sub.add_parser(prog, allow_abbrev=False, usage=f"pktpath {prog} [-t TABLE] -L|-A|-I|-D|-F|-Z|-P "
                           "[CHAIN] [RULE] [-v] [-n] [-x] [--line-numbers] [--on HOST]",
                           help=f"a host's {what}netfilter chains, as {prog}: -L -v -n, -A, -I, -D, -F, -Z, -P",
                           description=f"{prog}(8) on a host, each family's table apart: RULE is -s ADDR[/LEN] "
                                       f"-d ADDR[/LEN] -p tcp|udp|{protos}|N --sport N --dport N -j ACCEPT|DROP")
        client_args(p, "--on", "on", "the host (default: the first)")
        p.set_defaults(func=_cmd_show)
    p = sub.add_parser("sysctl", help="a host's net.ipv4 TCP sysctls, as sysctl(8) reads and writes them",
                       description="sysctl NAME... prints them; sysctl -w NAME=VALUE sets one on every layer "
                                   "that reads it; a knob of a mechanism pktpath lacks takes only the value "
                                   "pktpath behaves as")
    p.add_argument("words", nargs="*", metavar="NAME[=VALUE]", help="e.g. net.ipv4.tcp_rmem, "
                                                                   "net.ipv4.tcp_sack=0")
    p.add_argument("-w", "--write", action="store_true", help="set (NAME=VALUE also sets)")
    p.add_argument("-a", "--all", action="store_true", help="every sysctl pktpath has")
    client_args(p, "--on", "on", "the host (default: the first)")
    p.set_defaults(func=_cmd_show)
    p = sub.add_parser("tc", help="a host's root qdiscs, and netem changed while it runs, as tc(8)",
                       description="tc qdisc show [dev DEV]; tc qdisc change dev DEV root netem [loss P%%] "
                                   "[delay T] [duplicate P%%] [reorder P%%] [corrupt P%%]; tc qdisc del dev DEV root")
    p.add_argument("words", nargs="+", metavar="qdisc ...", help="qdisc show | qdisc change dev eth0 root netem ...")
    p.add_argument("-j", "--json", action="store_true", help="as JSON with stable field names")
    client_args(p, "--on", "on", "the host (default: the first)")
    p.set_defaults(func=_cmd_show)
    p = sub.add_parser("ethtool", help="a NIC's settings, statistics (-S), rings (-g), features (-k, -K DEV gro "
                                       "on|off), as ethtool shows them")
    p.add_argument("devname", metavar="[HOST:]DEV", help="e.g. B:eth0")
    p.add_argument("changes", nargs="*", metavar="FEATURE on|off", help="with -K: e.g. gro off")
    show = p.add_mutually_exclusive_group()
    show.add_argument("-S", "--statistics", action="store_true", help="the driver's statistics")
    show.add_argument("-g", "--show-ring", dest="ring", action="store_true", help="the RX/TX ring sizes")
    show.add_argument("-k", "--show-features", dest="show_features", action="store_true", help="the offloads")
    show.add_argument("-K", "--features", dest="features", action="store_true", help="change offloads: gro on|off")
    client_args(p, "--on", "on", "the host (default: the first, or HOST: in the name)")
    p.set_defaults(func=_cmd_show)
    p = sub.add_parser("ifconfig", help="a host's interface counters (/proc/net/dev)")
    p.add_argument("-j", "--json", action="store_true", help="as JSON with stable field names")
    client_args(p, "--on", "on", "the host (default: the first)")
    p.set_defaults(func=_cmd_show)
    p = sub.add_parser("trace", help="every event of the packets a filter matches, as pwru prints them")
    p.add_argument("filter", nargs="*", help="a pcap-filter expression, as pwru and tcpdump take it: "
                                             "'host 10.0.0.2 and (udp port 53 or icmp)'")
    p.add_argument("-c", "--count", type=int, default=0, help="stop after this many lines (default: Ctrl-C)")
    p.add_argument("--timeout", type=float, help="stop after this many seconds")
    client_args(p)  # the orchestrator sees every host
    p.set_defaults(func=_cmd_trace)
    p = sub.add_parser("drops", help="drops by reason and place as they happen, as dropwatch shows them")
    p.add_argument("filter", nargs="*", help="a pcap-filter expression: each dropped packet it matches, with its "
                                             "reason, place and tuple (default: every drop, counted per interval)")
    p.add_argument("-i", "--interval", type=float, default=1.0, help="seconds between looks (default 1)")
    p.add_argument("-n", "--rounds", type=int, default=0, help="stop after this many looks (default: Ctrl-C)")
    p.add_argument("-c", "--count", type=int, default=0, help="with a filter: stop after this many drops "
                                                              "(default: Ctrl-C)")
    p.add_argument("--timeout", type=float, help="with a filter: stop after this many seconds")
    client_args(p, "--on", "on", "only this host (default: all)")
    p.set_defaults(func=_cmd_drops)
    p = sub.add_parser("drill", help="run packetdrill scripts, as packetdrill does, against a pktpath host or the "
                                     "Linux kernel",
                       description="Each script's events at their times: system calls on the stack's sockets, "
                                   "inbound packets injected, outbound ones checked field by field; local "
                                   "192.168.0.1, remote 192.0.2.1, as the kernel's selftests run packetdrill. "
                                   "Without --kernel, against a pktpath host of its own (its eth0 on a TAP "
                                   "device), started for the run; with --deterministic, its layers in this "
                                   "process on a virtual clock, a fresh host per script. Needs root but with "
                                   "--deterministic.")
    p.add_argument("scripts", nargs="+", metavar="SCRIPT.pkt", help="packetdrill scripts")
    p.add_argument("--kernel", action="store_true", help="against the Linux kernel, in a network namespace with a "
                                                         "TUN device")
    p.add_argument("--deterministic", action="store_true",
                   help="against pktpath's layers wired in this process on a virtual clock: timers exact, "
                        "no processes, no root, a script in milliseconds")
    p.add_argument("--tolerance-usecs", type=int,
                   help="how far from its time an event may happen (default: 4000, packetdrill's, with --kernel "
                        "or --deterministic; 20000 against a live pktpath host)")
    p.add_argument("--on", metavar="HOST", help="against HOST of the running topology (pktpath up), its "
                                                  "addresses kept: the script's remote routed through a gateway "
                                                  "address nobody has, for the run")
    p.add_argument("--topology", help="with --on: the running topology's file or name (default: the run's)")
    p.add_argument("--base-port", type=int, help="the pktpath host's port layout (default: the first free from "
                                                 "55000; with --on, the running topology's)")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="with --kernel or --deterministic: N scripts at once, each in a process and namespace of "
                        "its own (default: 1)")
    p.add_argument("-D", "--define", action="append", default=[], metavar="SYMBOL=VALUE",
                   help="a name for the scripts, as packetdrill's -D (default: none beyond the kernel "
                        "selftests' CMSG_LEVEL_IP and CMSG_TYPE_RECVERR)")
    p.add_argument("--ip-version", type=_ip_version, default=4, metavar="4|6",
                   help="the scripts' packets and sockets over IPv4 (the default) or IPv6, with the addresses the "
                        "kernel's selftests give packetdrill's --ip_version=ipv6 (local fd3d:a0b:17d6::1, remote "
                        "fd3d:fa7b:d17d::1, MTU 1520)")
    p.set_defaults(func=_cmd_drill)
    p = sub.add_parser("decode", help="decode an Ethernet frame given in hex")
    p.add_argument("hex", nargs="+", help="frame bytes in hex (spaces allowed)")
    p.set_defaults(func=_cmd_decode)
    p = sub.add_parser("serve", help="run one layer's gRPC service")
    p.add_argument("layer", choices=sorted(LAYERS), help="the layer this process serves")
    p.add_argument("--listen", help="host:port (port 0: any free port); default: from the topology's layout")
    p.add_argument("--host", help="the topology host this service belongs to (omit: the draft servicer)")
    p.add_argument("--topology", default="default", help="topology file or built-in name (default: default)")
    p.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT, help="port layout base (default 50000)")
    p.add_argument("--run-id", help="names this run's shared memory (default: the base port)")
    p.set_defaults(func=_cmd_serve)
    return ap


def main(argv: list[str] | None = None) -> int:
    # A shell starts a background job (`pktpath tcpdump ... &` in a script) with SIGINT
    # ignored, and Python then leaves it so: Ctrl-C and kill -INT would do nothing. Every
    # command stops on SIGINT, as tcpdump installs its handlers whatever it inherited.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ap = parser()
    args, extra = ap.parse_known_args(argv)
    if args.command in ("iptables", "ip6tables"):  # their own options are their words (pktpath.tools.ip6?tables)
        args.words = extra or ["-L"]
    elif extra:
        ap.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:  # `pktpath` alone: what it can do, as `ip` and `git` answer
        ap.print_help()
        return 0
    try:
        require_upb()
    except SlowProtobufBackend as exc:
        print(f"pktpath: {exc}", file=sys.stderr)
        return 1
    from pktpath.config import TlsError

    try:
        return args.func(args)
    except TlsError as exc:  # PKTPATH_TLS_DIR without its files: one line, not a traceback
        print(f"pktpath {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
