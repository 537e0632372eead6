"""The network fence of a learner's server: a network namespace of its own, one veth pair to the host,
and nftables rules that let it reach the hub's and the proxy's ports on the host and nothing else.

::

    host (root netns)                              the server's netns  lhf<N>
    127.0.0.1:<hub port>  <-- DNAT --+             127.0.0.1 (its own loopback: its kernels)
    127.0.0.1:<proxy port> <- DNAT --+
                                lhf<N>h 10.213.x.1/30 ===== lhf<N>n 10.213.x.2/30  <- the server listens here
                                                                                      (the proxy connects to it)

* The server calls the hub and the platform at the URLs a server on the host would
  (``http://127.0.0.1:<hub port>``, ``http://localhost:<proxy port>``): inside the namespace a DNAT rule
  sends exactly those ports of 127.0.0.1 to ``10.213.x.1``, and on the host another turns them into
  ``127.0.0.1`` (``route_localnet`` on both ends of the veth allows it), Host header and TLS name unchanged. Any other connection to the
  host (PostgreSQL, Redis, the services' ports, the proxy's API, any host address) is dropped in the input
  hook (rejected, so a client fails at once); anything forwarded (another learner's netns, the internet) is dropped in the forward hook unless
  the server is allowed outbound internet (then it is masqueraded, and still never reaches another netns).
* Kernels listen on the namespace's own loopback: no other learner shares it.
* IPv6 is switched off on both ends, so no rule of IPv4 can be walked around.

All of it needs root (CAP_NET_ADMIN) and Debian's ``iproute2`` and ``nftables`` (``bootstrap.sh``).
"""
from __future__ import annotations

import fcntl
import ipaddress
import logging
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

TABLE = "learnhub_fence"
#: bumped when the rules change: a table of another version is replaced at the next start
RULES_VERSION = "learnhub fence 2"
PREFIX = "lhf"
STATE_DIR = Path("/run/learnhub")
NETNS_DIR = Path("/run/netns")


class FenceError(RuntimeError):
    """The fence cannot be put up (not root, a tool missing, the kernel refuses)."""


def missing_tools() -> list[str]:
    return [tool for tool in ("ip", "nft", "nsenter") if not shutil.which(tool)]


def fence_possible() -> str | None:
    """None when a fence can be put up here, else why not."""
    if os.geteuid() != 0:
        return "the hub does not run as root (a network namespace and nftables rules need CAP_NET_ADMIN)"
    tools = missing_tools()
    if tools:
        return f"missing {', '.join(tools)} (Debian packages iproute2, nftables, util-linux)"
    return None


def _run(*cmd: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(list(cmd), capture_output=True, text=True, input=input)
    if check and done.returncode != 0:
        raise FenceError(f"{' '.join(cmd)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done


@contextmanager
def _locked():
    """One fence change at a time on the machine (slot choice, the shared nftables table)."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / "fence.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _ruleset() -> str:
    # One table for every server of every hub on the machine; what differs per server are the
    # elements of the two sets, keyed by the host end of its veth.
    return f"""
table inet {TABLE} {{
    comment "{RULES_VERSION}"
    set allowed {{ type ifname . inet_service; }}
    set internet {{ type ifname; }}
    chain pre {{
        type nat hook prerouting priority dstnat; policy accept;
        meta nfproto ipv4 iifname . tcp dport @allowed fib daddr type local dnat ip to 127.0.0.1
    }}
    chain post {{
        type nat hook postrouting priority srcnat; policy accept;
        iifname @internet oifname != "{PREFIX}*" masquerade
    }}
    chain input {{
        type filter hook input priority filter - 10; policy accept;
        iifname "{PREFIX}*" ct state established,related accept
        iifname "{PREFIX}*" ct status dnat iifname . tcp dport @allowed accept
        iifname "{PREFIX}*" reject
    }}
    chain forward {{
        type filter hook forward priority filter - 10; policy accept;
        iifname "{PREFIX}*" oifname "{PREFIX}*" reject
        oifname "{PREFIX}*" ct state established,related accept
        oifname "{PREFIX}*" drop
        iifname @internet accept
        iifname "{PREFIX}*" reject
    }}
}}
"""


def _ensure_table() -> None:
    listed = _run("nft", "list", "table", "inet", TABLE, check=False)
    if listed.returncode == 0 and RULES_VERSION in listed.stdout:
        return
    if listed.returncode == 0:
        # Rules of an older learnhub: servers fenced by them lose their hub port until restarted.
        log.warning("Replacing the nftables table %s of an older version", TABLE)
        _run("nft", "delete", "table", "inet", TABLE)
    _run("nft", "-f", "-", input=_ruleset())


def _sysctl(path: str, value: str) -> None:
    try:
        Path("/proc/sys", path).write_text(value)
    except OSError as exc:
        log.debug("sysctl %s: %s", path, exc)


def _owner_file(name: str) -> Path:
    return STATE_DIR / f"{name}.owner"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(name: str) -> bool:
    """A namespace of a server that is gone (the hub was killed before it could stop it): no process in
    it, and the hub that made it is gone too. A namespace just made, whose server is still starting, has
    no process yet either; while its hub lives it is not for the taking (two spawns at once, or two hubs
    on one machine, would share a namespace, and the first to stop would take the other's network)."""
    done = _run("ip", "netns", "pids", name, check=False)
    if done.returncode != 0 or done.stdout.strip():
        return False
    try:
        owner = int(_owner_file(name).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return True  # made by a learnhub before owners were written down
    return owner != os.getpid() and not _alive(owner)


def _forget(host_if: str) -> None:
    """Remove every element of ``host_if`` (left by a hub killed before it stopped its servers): a reused
    slot must not inherit the ports another hub allowed."""
    import json

    listed = _run("nft", "-j", "list", "set", "inet", TABLE, "allowed", check=False)
    if listed.returncode != 0:
        return
    for item in json.loads(listed.stdout).get("nftables", []):
        for element in item.get("set", {}).get("elem", []) or []:
            concat = element.get("concat") if isinstance(element, dict) else None
            if concat and concat[0] == host_if:
                _run("nft", "delete", "element", "inet", TABLE, "allowed", f"{{ {host_if} . {concat[1]} }}",
                     check=False)
    _run("nft", "delete", "element", "inet", TABLE, "internet", f"{{ {host_if} }}", check=False)


class Fence:
    """The namespace, veth pair and set elements of one server (slot ``N``)."""

    def __init__(self, slot: int, subnet: str, ports: list[int], internet: bool):
        self.slot, self.ports, self.internet = slot, sorted(set(ports)), internet
        network = ipaddress.ip_network(subnet)
        base = network.network_address + 4 * slot
        if base + 3 > network.broadcast_address:
            raise FenceError(f"fence_subnet {subnet} has no room for server slot {slot}")
        self.host_ip, self.ns_ip = str(base + 1), str(base + 2)
        self.netns = f"{PREFIX}{slot}"
        self.host_if, self.ns_if = f"{PREFIX}{slot}h", f"{PREFIX}{slot}n"

    @property
    def netns_path(self) -> str:
        return str(NETNS_DIR / self.netns)

    def command_prefix(self) -> list[str]:
        """Run a command inside the namespace (bwrap then keeps it: no ``--unshare-net``)."""
        return [shutil.which("nsenter") or "nsenter", f"--net={self.netns_path}", "--"]

    @classmethod
    def create(cls, subnet: str, ports: list[int], internet: bool, slot: int | None = None) -> "Fence":
        why = fence_possible()
        if why:
            raise FenceError(why)
        with _locked():
            if slot is None or (NETNS_DIR / f"{PREFIX}{slot}").exists() and not _stale(f"{PREFIX}{slot}"):
                slot = 1
                while (NETNS_DIR / f"{PREFIX}{slot}").exists() and not _stale(f"{PREFIX}{slot}"):
                    slot += 1
            fence = cls(slot, subnet, ports, internet)
            fence._up()
        return fence

    def _up(self) -> None:
        _run("ip", "netns", "del", self.netns, check=False)
        _run("ip", "link", "del", self.host_if, check=False)
        _run("ip", "netns", "add", self.netns)
        _owner_file(self.netns).write_text(f"{os.getpid()}\n")
        try:
            _run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if,
                 "netns", self.netns)
            _sysctl(f"net/ipv6/conf/{self.host_if}/disable_ipv6", "1")
            _sysctl(f"net/ipv4/conf/{self.host_if}/route_localnet", "1")
            _run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
            _run("ip", "link", "set", self.host_if, "up")
            inside = ["ip", "-n", self.netns]
            _run(*inside, "link", "set", "lo", "up")
            _run(*inside, "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
            _run(*inside, "link", "set", self.ns_if, "up")
            # No IPv6 inside either (the namespace's own sysctls: written from inside it).
            _run("nsenter", f"--net={self.netns_path}", "--", "sh", "-c",
                 "for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do echo 1 > $f; done", check=False)
            if self.internet:
                _run(*inside, "route", "add", "default", "via", self.host_ip)
            self._loopback_to_host()
            _ensure_table()
            _forget(self.host_if)
            for port in self.ports:
                _run("nft", "add", "element", "inet", TABLE, "allowed", f"{{ {self.host_if} . {port} }}")
            if self.internet:
                _run("nft", "add", "element", "inet", TABLE, "internet", f"{{ {self.host_if} }}")
                _sysctl("net/ipv4/ip_forward", "1")
        except Exception:
            self._down()
            raise

    def _loopback_to_host(self) -> None:
        """Inside the namespace, the hub's and the proxy's ports on 127.0.0.1 lead to the host's.

        So the server keeps the URLs a server on the host has (``http://127.0.0.1:8081/hub/api``,
        ``https://localhost:8443``): the Host header and the name a certificate is checked against stay
        the platform's own, which the proxy's host routing (``subdomain_host``) and TLS need. Locally made
        packets to those ports are sent to the fence's host address (the host's DNAT then takes them to
        its 127.0.0.1) from the namespace's address; ``route_localnet`` lets a packet that was bound for
        loopback leave by the veth. The ports are reserved, so no kernel of the server listens on one
        (its connections would be taken to the host)."""
        if not self.ports:
            return
        ports = ", ".join(str(p) for p in self.ports)
        inside = ["nsenter", f"--net={self.netns_path}", "--"]
        _run(*inside, "nft", "-f", "-", input=f"""
table ip {TABLE} {{
    chain out {{
        type nat hook output priority -100; policy accept;
        ip daddr 127.0.0.1 tcp dport {{ {ports} }} dnat to {self.host_ip}
    }}
    chain post {{
        type nat hook postrouting priority 100; policy accept;
        oifname "{self.ns_if}" ip saddr 127.0.0.0/8 snat to {self.ns_ip}
    }}
}}
""")
        _run(*inside, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet; "
             f"echo 1 > /proc/sys/net/ipv4/conf/{self.ns_if}/route_localnet; "
             f"echo {','.join(str(p) for p in self.ports)} > /proc/sys/net/ipv4/ip_local_reserved_ports")

    def _down(self) -> None:
        for port in self.ports:
            _run("nft", "delete", "element", "inet", TABLE, "allowed", f"{{ {self.host_if} . {port} }}",
                 check=False)
        if self.internet:
            _run("nft", "delete", "element", "inet", TABLE, "internet", f"{{ {self.host_if} }}", check=False)
        _run("ip", "netns", "del", self.netns, check=False)  # the veth pair goes with it
        _run("ip", "link", "del", self.host_if, check=False)
        try:
            _owner_file(self.netns).unlink()
        except OSError:
            pass

    def remove(self) -> None:
        with _locked():
            self._down()

    def state(self) -> dict:
        return {"slot": self.slot, "host_ip": self.host_ip, "ns_ip": self.ns_ip, "ports": self.ports,
                "internet": self.internet}
