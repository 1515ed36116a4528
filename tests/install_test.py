#!/usr/bin/python3
"""stemma installed into a staging prefix (`cmake --install BUILD --prefix STAGE`), used as
an application and an operator would use it:

- pkg-config finds stemma there, with its version and its flags;
- the example installed with it (share/doc/stemma/examples/embed_node.c) compiles against
  the installed header and links against the installed library, shared and static;
- the shared library exports the public API's stemma_ names and nothing else (nm -D);
- the example built so runs: it embeds a node that syncs with the installed `stemma node`
  (tests/embed_test.py's check);
- the manual pages say what the program says: stemma(1) holds `stemma --help` and every
  command's --help word for word, stemma-node.toml(5) every setting `stemma init` writes;
- the installed `stemma demo` runs from another directory, on the installed schema sets;
- the systemd unit runs `stemma node` from the installed bin, hardened, Type=notify.

Run by ctest as `python3 tests/install_test.py BUILD_DIR` from the source root."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import embed_test  # noqa: E402
import mesh_test  # noqa: E402

BUILD = None
STAGE = None


def run(*args, env=None, cwd=None):
    p = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {p.returncode}: {p.stderr}{p.stdout}")
    return p.stdout


def build_cflags():
    """The C flags the build used (a sanitizer's, in build-sanitize): an example linked
    against that build's library needs them too."""
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        m = re.search(r"^CMAKE_C_FLAGS:STRING=(.*)$", f.read(), re.M)
    return m.group(1).split() if m else []


def pkg_config(*args):
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(STAGE, "lib", "pkgconfig"))
    return run("pkg-config", *args, env=env).split()


def version():
    with open("include/stemma.h") as f:
        parts = dict(re.findall(r"#define STEMMA_VERSION_(MAJOR|MINOR|PATCH) (\d+)", f.read()))
    return f"{parts['MAJOR']}.{parts['MINOR']}.{parts['PATCH']}"


def setUpModule():
    global STAGE
    STAGE = tempfile.mkdtemp(prefix="stemma-stage-")
    run("cmake", "--install", BUILD, "--prefix", STAGE)


def tearDownModule():
    shutil.rmtree(STAGE, ignore_errors=True)


def unroff(text):
    """A .nf block of a page as the program printed it."""
    return (text.replace("\\&", "").replace("\\-", "-").replace("\\e", "\\"))


class Library(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="stemma-install-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.example = os.path.join(STAGE, "share", "doc", "stemma", "examples", "embed_node.c")

    def test_pkg_config_finds_it(self):
        self.assertEqual(pkg_config("--modversion", "stemma"), [version()])
        self.assertIn("-I" + os.path.join(STAGE, "include"),
                      [os.path.normpath(f[:2] + os.path.normpath(f[2:])) if f.startswith("-I")
                       else f for f in pkg_config("--cflags", "stemma")])
        libs = pkg_config("--libs", "stemma")
        self.assertIn("-lstemma", libs)
        self.assertIn(os.path.join(STAGE, "lib"),
                      [os.path.normpath(f[2:]) for f in libs if f.startswith("-L")])

    def test_only_the_public_api_is_exported(self):
        lib = os.path.join(STAGE, "lib", "libstemma.so")
        out = run("nm", "-D", "--defined-only", lib)
        names = [line.split()[2] for line in out.splitlines() if len(line.split()) == 3]
        self.assertGreater(len(names), 20)
        self.assertEqual([n for n in names if not n.startswith("stemma_")], [])
        soname = run("readelf", "-d", lib)
        self.assertIn(f"Library soname: [libstemma.so.{version().split('.')[0]}]", soname)

    def test_the_sqlite_extension_loads_and_exports_its_entry_alone(self):
        module = os.path.join(STAGE, "lib", "stemma", "stemma.so")
        out = run("nm", "-D", "--defined-only", module)
        self.assertEqual([line.split()[2] for line in out.splitlines()
                          if len(line.split()) == 3], ["sqlite3_stemma_init"])
        if "libasan" in run("ldd", module):
            self.skipTest("a sanitized module loads only with its runtime preloaded "
                          "(tests/sqlext_test.py does that)")
        import sqlite3
        db = sqlite3.connect(":memory:")
        db.enable_load_extension(True)
        db.load_extension(module[:-3])
        self.assertEqual(db.execute("SELECT stemma_version()").fetchone()[0], version())
        db.close()

    def build_example(self, static):
        out = os.path.join(self.tmp, "embed_node" + ("-static" if static else ""))
        if static:
            # libstemma's archive, with the libraries it needs shared (Debian's libzmq.pc
            # names static archives that Debian does not ship, so --static cannot link).
            flags = (pkg_config("--cflags", "stemma", "sqlite3")
                     + [os.path.join(STAGE, "lib", "libstemma.a")]
                     + pkg_config("--libs", "libsodium", "libzmq", "sqlite3", "msgpack")
                     + ["-pthread"])
        else:
            flags = pkg_config("--cflags", "--libs", "stemma", "sqlite3")
        run("cc", "-std=c11", "-Wall", "-Wextra", "-Werror", *build_cflags(), "-o", out,
            self.example, *flags)
        return out

    def test_the_example_builds_shared_and_static_and_syncs(self):
        for static in (False, True):
            exe = self.build_example(static)
            needed = run("readelf", "-d", exe)
            self.assertEqual("libstemma.so" in needed, not static, needed)
            # It runs: a node embedded by it syncs with the installed `stemma node`.
            env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(STAGE, "lib"))
            os.environ.update(env)
            mesh_test.STEMMA = os.path.join(STAGE, "bin", "stemma")
            embed_test.EMBED = exe
            result = unittest.TextTestRunner(stream=open(os.devnull, "w")).run(
                embed_test.Embedded("test_stepped_by_the_applications_loop"))
            self.assertTrue(result.wasSuccessful(),
                            f"{'static' if static else 'shared'}: "
                            f"{result.failures + result.errors}")


class Manual(unittest.TestCase):
    def page(self, section, name):
        with open(os.path.join(STAGE, "share", "man", f"man{section}", name)) as f:
            return f.read()

    def test_stemma_1_is_what_help_says(self):
        stemma = os.path.join(STAGE, "bin", "stemma")
        page = self.page(1, "stemma.1")
        blocks = {}
        for m in re.finditer(r"^\.(SH DESCRIPTION|SS stemma (\S+))\n\.nf\n(.*?)\.fi\n", page,
                             re.S | re.M):
            blocks[m.group(2) or ""] = unroff(m.group(3))
        self.assertEqual(blocks.pop(""), run(stemma, "--help"))
        commands = re.findall(r"^  (\S+) ", run(stemma, "--help").split("commands:\n")[1],
                              re.M)
        self.assertGreater(len(commands), 15)
        self.assertEqual(sorted(blocks), sorted(commands))
        for cmd in commands:
            self.assertEqual(blocks[cmd], run(stemma, cmd, "--help"), cmd)
        # It renders (man's own check of the roff).
        if shutil.which("man"):
            text = run("man", "-l", "--warnings", os.path.join(STAGE, "share", "man", "man1",
                                                                "stemma.1"),
                       env=dict(os.environ, MANWIDTH="100"))
            self.assertIn("stemma demo", text)

    def test_node_toml_5_has_every_setting(self):
        page = self.page(5, "stemma-node.toml.5")
        tmp = tempfile.mkdtemp(prefix="stemma-install-")
        self.addCleanup(shutil.rmtree, tmp, True)
        stemma = os.path.join(STAGE, "bin", "stemma")
        run(stemma, "init", "--dir", os.path.join(tmp, "n"), "--db", os.path.join(tmp, "n.db"),
            "--schemas", os.path.abspath("schemas/tasks"))
        with open(os.path.join(tmp, "n", "node.toml")) as f:
            toml = f.read()
        sections = re.findall(r"^#? ?\[(\w+)\]", toml, re.M)
        keys = re.findall(r"^#? ?([a-z_]+) = ", toml, re.M)
        self.assertGreater(len(keys), 20)
        for s in sections:
            self.assertIn(f".SS [{s}]\n", page)
        for k in keys:
            self.assertIn(f".B {k}\n", page)


class Operator(unittest.TestCase):
    def test_the_demo_runs_from_anywhere(self):
        cwd = tempfile.mkdtemp(prefix="stemma-demo-")
        self.addCleanup(shutil.rmtree, cwd, True)
        out = run(os.path.join(STAGE, "bin", "stemma"), "demo", cwd=cwd,
                  env=dict(os.environ, STEMMA_NO_CACHE="1"))
        self.assertIn("tasks-fork", out)

    def test_the_unit_runs_the_installed_node_hardened(self):
        with open(os.path.join(STAGE, "lib", "systemd", "system", "stemma@.service")) as f:
            unit = f.read()
        self.assertIn(f"ExecStart={STAGE}/bin/stemma node --dir /var/lib/stemma/%I", unit)
        for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "DynamicUser=yes",
                     "NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=stemma/%I"):
            self.assertIn(line + "\n", unit)

    def test_completion_is_installed(self):
        path = os.path.join(STAGE, "share", "bash-completion", "completions", "stemma")
        with open(path) as f:
            self.assertIn("complete -o filenames -F _stemma stemma", f.read())
        if shutil.which("bash"):
            # The commands it offers are those `stemma --help` lists.
            stemma_dir = os.path.join(STAGE, "bin")
            out = run("bash", "-c", f'source "{path}"; COMP_WORDS=(stemma mi); COMP_CWORD=1; '
                      '_stemma; printf "%s\\n" "${COMPREPLY[@]}"',
                      env=dict(os.environ, PATH=stemma_dir + ":" + os.environ["PATH"]))
            self.assertEqual(out.split(), ["migrate"])


if __name__ == "__main__":
    BUILD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=1)
