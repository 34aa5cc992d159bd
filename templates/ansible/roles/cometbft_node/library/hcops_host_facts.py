#!/usr/bin/python3
# Shipped with hcops (templates/ansible/roles/cometbft_node). Runs on the host, as root, in one Python process:
# cheaper than a task per fact, and the provider reads one result per host.
"""What hcops audits on a host: the node's systemd unit and its hardening, the binary, the system user,
the key files (mode and owner only: never their content), the node's listening sockets and its nftables
table. ``light`` limits it to what plan and apply need (does the user and the unit exist, is it active)."""

from __future__ import annotations

import errno
import fcntl
import grp
import hashlib
import json
import os
import pwd
import re
import stat
import struct
import subprocess

from ansible.module_utils.basic import AnsibleModule

UNIT_PROPERTIES = (
    "LoadState", "ActiveState", "SubState", "UnitFileState", "NRestarts", "MainPID", "FragmentPath",
    "DropInPaths", "User", "Group", "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp",
    "PrivateDevices", "CapabilityBoundingSet", "AmbientCapabilities", "ReadWritePaths", "ExecStart",
    "ActiveEnterTimestamp",
)
_SS_LINE = re.compile(r"^\S+\s+\d+\s+\d+\s+(?P<local>\S+)\s+\S+\s*(?P<users>.*)$")
_PID = re.compile(r"pid=(\d+)")


def run(cmd, timeout=15):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, "", str(exc)
    return p.returncode, p.stdout, p.stderr


def unit_facts(unit):
    rc, out, _ = run(["systemctl", "show", unit, "--no-pager", *[f"--property={p}" for p in UNIT_PROPERTIES]])
    props = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        props[key] = value
    installed = props.get("LoadState") == "loaded" and bool(props.get("FragmentPath"))
    return {
        "name": unit,
        "installed": installed,
        "load_state": props.get("LoadState"),
        "active_state": props.get("ActiveState"),
        "sub_state": props.get("SubState"),
        "unit_file_state": props.get("UnitFileState"),
        "n_restarts": int(props.get("NRestarts") or 0),
        "main_pid": int(props.get("MainPID") or 0),
        "fragment_path": props.get("FragmentPath") or None,
        "drop_in_paths": (props.get("DropInPaths") or "").split(),
        "active_since": props.get("ActiveEnterTimestamp") or None,
        "hardening": {
            "user": props.get("User", ""),
            "group": props.get("Group", ""),
            "no_new_privileges": props.get("NoNewPrivileges") == "yes",
            "protect_system": props.get("ProtectSystem", ""),
            "protect_home": props.get("ProtectHome", ""),
            "private_tmp": props.get("PrivateTmp") == "yes",
            "private_devices": props.get("PrivateDevices") == "yes",
            "capability_bounding_set": (props.get("CapabilityBoundingSet") or "").split(),
            "ambient_capabilities": (props.get("AmbientCapabilities") or "").split(),
            "read_write_paths": (props.get("ReadWritePaths") or "").split(),
        } if installed else None,
    }


def user_facts(name):
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        return {"name": name, "exists": False}
    try:
        group = grp.getgrgid(pw.pw_gid).gr_name
    except KeyError:
        group = None
    return {"name": name, "exists": True, "uid": pw.pw_uid, "gid": pw.pw_gid, "group": group,
            "home": pw.pw_dir, "shell": pw.pw_shell}


def file_meta(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return {"error": str(exc)[:200]}
    if not stat.S_ISREG(st.st_mode):
        return {"error": "not a regular file", "mode": f"{stat.S_IMODE(st.st_mode):04o}", "uid": st.st_uid,
                "gid": st.st_gid}
    return {"mode": f"{stat.S_IMODE(st.st_mode):04o}", "uid": st.st_uid, "gid": st.st_gid, "size": st.st_size}


def binary_facts(path):
    meta = file_meta(path)
    out = {"path": path, "present": bool(meta and "size" in meta), "meta": meta}
    if not out["present"]:
        return out
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    out["sha256"] = h.hexdigest()
    rc, stdout, _ = run([path, "version"], timeout=10)
    out["version"] = stdout.strip().splitlines()[0] if rc == 0 and stdout.strip() else None
    return out


def listening(pids, ports):
    """TCP sockets in LISTEN state of the node: owned by its processes, or on its ports (ss shows no owner
    where root lacks CAP_SYS_PTRACE, as in some containers; a socket on a node port is the node's anyway)."""
    rc, out, _ = run(["ss", "-Hltnp"])
    if rc != 0:
        return None
    found = []
    for line in out.splitlines():
        m = _SS_LINE.match(line.strip())
        if not m:
            continue
        owners = {int(p) for p in _PID.findall(m.group("users"))}
        address, _, port = m.group("local").rpartition(":")
        if not owners & pids and not (port.isdigit() and int(port) in ports):
            continue
        address = address.strip("[]").split("%")[0]
        address = "0.0.0.0" if address == "*" else address
        found.append({"address": address, "port": int(port) if port.isdigit() else port})
    return sorted(found, key=lambda s: (s["port"], s["address"]))


def process_tree(main_pid):
    if main_pid <= 0:
        return set()
    pids = {main_pid}
    try:
        with open(f"/proc/{main_pid}/task/{main_pid}/children") as f:
            pids |= {int(p) for p in f.read().split()}
    except OSError:
        pass
    return pids


def firewall_facts(table):
    rc, out, err = run(["nft", "-j", "list", "table", "inet", table])
    if rc != 0:
        return {"table": f"inet {table}", "present": False, "error": err.strip()[:200] or None}
    try:
        doc = json.loads(out)
    except ValueError:
        return {"table": f"inet {table}", "present": False, "error": "nft -j printed no JSON"}
    return {"table": f"inet {table}", "present": True, "nftables": doc.get("nftables", [])}


# Encryption at rest of the data folder, as hcops/providers/docker/storage.py measures a volume's folder (this
# module runs on the host, where hcops is not installed): an fscrypt policy on the folder, or a dm-crypt
# device under its filesystem (through partitions, stacked mappings and loop devices).
FS_IOC_GET_ENCRYPTION_POLICY_EX = 0xC0096616


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _mount_of(path):
    best = None
    for line in (_read("/proc/self/mountinfo") or "").splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 2:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda o: chr(int(o[1], 8)), fields[4]).rstrip("/") or "/"
        if path == point or path.startswith(point + "/") or point == "/":
            if best is None or len(point) >= len(best[0]):
                best = (point, tail[0], tail[1])
    return best


def _dm_crypt(device, depth=0):
    sysdir = os.path.realpath(f"/sys/dev/block/{device}")
    if depth > 4 or not os.path.exists(sysdir):
        return None
    if os.path.exists(f"{sysdir}/partition"):
        sysdir = os.path.dirname(sysdir)
    if (_read(f"{sysdir}/dm/uuid") or "").startswith("CRYPT-"):
        return _read(f"{sysdir}/dm/name") or os.path.basename(sysdir)
    slaves = f"{sysdir}/slaves"
    for slave in sorted(os.listdir(slaves)) if os.path.isdir(slaves) else ():
        found = _dm_crypt(_read(f"{slaves}/{slave}/dev") or "", depth + 1)
        if found:
            return found
    backing = _read(f"{sysdir}/loop/backing_file")
    if backing:
        try:
            st = os.stat(backing)
        except OSError:
            return None
        return _dm_crypt(f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}", depth + 1)
    return None


def storage_facts(folder):
    out = {"kind": "host-folder", "path": folder, "measured": False, "encrypted": None, "method": None}
    try:
        real = os.path.realpath(folder)
        st = os.stat(real)
    except OSError:
        out["detail"] = f"{folder} does not exist"
        return out
    mount = _mount_of(real)
    out.update(fstype=mount[1] if mount else None, device=mount[2] if mount else None)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY)
        try:
            buf = bytearray(struct.pack("=Q", 24) + bytes(24))
            fcntl.ioctl(fd, FS_IOC_GET_ENCRYPTION_POLICY_EX, buf, True)
            out.update(measured=True, encrypted=True, method="fscrypt", detail=f"fscrypt policy on {folder}")
            return out
        finally:
            os.close(fd)
    except OSError as exc:
        note = ("no fscrypt policy on the folder" if exc.errno == errno.ENODATA
                else "the filesystem has no encryption support")
    device = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    if os.major(st.st_dev) == 0 and mount and mount[2].startswith("/dev/"):
        try:
            rdev = os.stat(mount[2]).st_rdev
            device = f"{os.major(rdev)}:{os.minor(rdev)}"
        except OSError:
            pass
    crypt = _dm_crypt(device)
    if crypt:
        out.update(measured=True, encrypted=True, method="dm-crypt",
                   detail=f"{out['fstype']} on dm-crypt mapping {crypt}")
    else:
        out.update(measured=True, encrypted=False,
                   detail=f"{out['fstype']} on {out['device']}: {note}, no dm-crypt device underneath")
    return out


def main():
    module = AnsibleModule(
        argument_spec={
            "unit": {"type": "str", "required": True},
            "home": {"type": "str", "required": True},
            "user": {"type": "str", "required": True},
            "binary": {"type": "str", "required": True},
            "key_files": {"type": "list", "elements": "str", "default": []},
            "firewall_table": {"type": "str", "default": ""},
            "firewall_unit": {"type": "str", "default": ""},
            "restart_marker": {"type": "str", "default": ""},
            "ports": {"type": "list", "elements": "int", "default": []},
            "light": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    p = module.params
    unit = unit_facts(p["unit"])
    result = {"changed": False, "unit": unit, "user": user_facts(p["user"]),
              "restart_pending": bool(p["restart_marker"]) and os.path.exists(p["restart_marker"])}
    if p["firewall_unit"]:
        result["firewall_unit"] = unit_facts(p["firewall_unit"])
    if not p["light"]:
        home = p["home"].rstrip("/")
        result["binary"] = binary_facts(p["binary"])
        result["key_files"] = {rel: file_meta(f"{home}/{rel}") for rel in p["key_files"]}
        result["storage"] = storage_facts(f"{home}/data")
        result["listening"] = listening(process_tree(unit["main_pid"]), set(p["ports"]))
        if p["firewall_table"]:
            result["firewall"] = firewall_facts(p["firewall_table"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
