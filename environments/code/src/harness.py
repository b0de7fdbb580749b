# The HumanEval checker. Runs as the whole program; everything it is given
# comes on stdin as one JSON object: {"nonce", "prompt", "program", "test",
# "entry_point"}. `program` is the policy's code (prompt + completion).
#
# Reward integrity: the verdict is the last stdout line,
# `__envhub_verdict_<nonce>__:{"passed": P, "total": T}`, written with a
# reference to `os.write` taken before any policy code runs, followed by
# `os._exit(0)`. The nonce is drawn by the environment per call and exists
# only as a local of `main` (stdin is read to its end first). Policy code
# runs through `exec` inside `try/except BaseException` in its own
# namespace, after an audit hook (which cannot be removed) has blocked frame
# and object-graph introspection. The tests run against their own copy of
# the builtins, with every module they (or the prompt) import restored after
# each call of the policy's function, and the function's arguments and
# return value copied into plain built-in values (so an object whose `__eq__`
# is always true, or an argument mutated in place, cannot pass a test). This
# file is executed with a snapshot of the builtins as its globals'
# `__builtins__`, taken before the policy's code exists.


def main():
    import sys
    import os
    import gc
    import json
    import _ast

    write, exit_now, read = os.write, os._exit, os.read
    modules = sys.modules
    dict_clear, dict_update, dict_items = dict.clear, dict.update, dict.items
    list_iter, set_iter, frozenset_iter, tuple_iter = list.__iter__, set.__iter__, frozenset.__iter__, tuple.__iter__
    gc_disable = gc.disable
    real_stdout = sys.stdout

    # Read all of stdin: the policy finds it empty.
    chunks = []
    while True:
        chunk = read(0, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    payload = json.loads(b"".join(chunks))
    del chunks
    nonce = payload["nonce"]
    prompt, program, test, entry_point = payload["prompt"], payload["program"], payload["test"], payload["entry_point"]
    del payload

    def verdict(passed, total, failure):
        restore()
        out = []
        if failure is not None:
            try:
                out.append("\n__envhub_failure__:" + json.dumps(failure))
            except BaseException:
                pass
        try:
            real_stdout.flush()
        except BaseException:
            pass
        return out, passed, total

    # --- Everything the tests need, prepared before any policy code runs. ---
    only_ast = 0x400  # PyCF_ONLY_AST

    def walk(node):
        todo = [node]
        while todo:
            n = todo.pop()
            yield n
            for field in type(n)._fields:
                v = getattr(n, field, None)
                if isinstance(v, _ast.AST):
                    todo.append(v)
                elif isinstance(v, list):
                    todo.extend(x for x in v if isinstance(x, _ast.AST))

    def imported(src):
        names = []
        try:
            tree = compile(src, "<imports>", "exec", only_ast)
        except BaseException:
            return names
        for n in walk(tree):
            if isinstance(n, _ast.Import):
                for a in n.names:
                    parts = a.name.split(".")
                    names.extend(".".join(parts[: i + 1]) for i in range(len(parts)))
            elif isinstance(n, _ast.ImportFrom) and n.module and not n.level:
                parts = n.module.split(".")
                names.extend(".".join(parts[: i + 1]) for i in range(len(parts)))
        return names

    # Modules the prompt, the tests and this checker use: imported now, and
    # put back as they are now after every call into policy code.
    snapshots = []
    for name in ["json", "json.encoder", "json.decoder", "json.scanner"] + imported(prompt) + imported(test):
        try:
            __import__(name)
            mod = modules[name]
            d = mod.__dict__
            snapshots.append((name, mod, d, dict(d)))
        except BaseException:
            pass
    graveyard = []  # what policy code left behind: never freed, so no __del__ runs in the checker

    def restore():
        gc_disable()
        for name, mod, d, snap in snapshots:
            graveyard.append(dict(d))
            modules[name] = mod
            dict_clear(d)
            dict_update(d, snap)

    lines = test.splitlines()

    def segment(node):
        try:
            return "\n".join(lines[node.lineno - 1 : node.end_lineno]).strip()
        except BaseException:
            return ""

    tree = compile(test, "test.py", "exec", only_ast)
    fns = [n for n in tree.body if isinstance(n, _ast.FunctionDef) and n.name == "check"]
    statements = []  # (code, counts, source, code of the compared value or None)
    param = "candidate"
    if fns:
        fn = fns[-1]
        if fn.args.args:
            param = fn.args.args[0].arg
        for stmt in fn.body:
            counts = any(isinstance(n, _ast.Assert) for n in walk(stmt))
            code = compile(_ast.Module(body=[stmt], type_ignores=[]), "test.py", "exec")
            left = None
            t = stmt.test if isinstance(stmt, _ast.Assert) else None
            if isinstance(t, _ast.Compare) and len(t.ops) == 1:
                try:
                    left = compile(_ast.Expression(body=t.left), "test.py", "eval")
                except BaseException:
                    left = None
            statements.append((code, counts, segment(stmt), left))
    test_code = compile(test, "test.py", "exec")

    atoms = (int, float, complex, str, bytes, bool, type(None))

    def plain(x, strict, depth=0):
        # A copy of `x` made only of exact built-in types, built without
        # running any method `x` defines. strict: anything else is refused;
        # otherwise it is passed as it is.
        t = type(x)
        if t in atoms:
            return x
        if depth > 200:
            raise RecursionError("the value is nested too deeply")
        if issubclass(t, int):
            return int.__index__(x)
        if issubclass(t, float):
            return float.__float__(x)
        if issubclass(t, str):
            return str.__str__(x)
        if issubclass(t, list):
            return [plain(v, strict, depth + 1) for v in list_iter(x)]
        if issubclass(t, tuple):
            return tuple([plain(v, strict, depth + 1) for v in tuple_iter(x)])
        if issubclass(t, dict):
            return {plain(k, strict, depth + 1): plain(v, strict, depth + 1) for k, v in dict_items(x)}
        if issubclass(t, frozenset):
            return frozenset([plain(v, strict, depth + 1) for v in frozenset_iter(x)])
        if issubclass(t, set):
            return set([plain(v, strict, depth + 1) for v in set_iter(x)])
        if strict:
            raise TypeError(
                "the function returned a value of type " + t.__name__ + "; only built-in values (numbers, "
                "strings, None, lists, tuples, dicts, sets) are accepted"
            )
        return x

    # The namespace the tests run in: the prompt's own definitions (helpers
    # such as HumanEval's `poly` come from the prompt, never the policy), the
    # checker's copy of the builtins, then the test file.
    test_ns = {"__builtins__": __builtins__, "__name__": "__envhub_test__"}
    try:
        exec(compile(prompt, "prompt.py", "exec"), test_ns)
    except BaseException:
        pass
    test_ns["__builtins__"] = __builtins__
    test_ns["__name__"] = "__envhub_test__"
    exec(test_code, test_ns)
    check = test_ns.get("check")

    # --- Armed: from here on policy code may run. ---
    blocked = frozenset(
        [
            "sys._getframe",
            "sys._current_frames",
            "sys._current_exceptions",
            "sys.settrace",
            "sys.setprofile",
            "sys.addaudithook",
            "sys.monitoring.register_callback",
            "gc.get_objects",
            "gc.get_referrers",
            "gc.get_referents",
            "code.__new__",
            "function.__new__",
            "os.system",
            "os.exec",
            "os.posix_spawn",
            "os.spawn",
            "os.fork",
            "os.forkpty",
            "os.kill",
            "os.killpg",
            "subprocess.Popen",
            "ctypes.dlopen",
            "ctypes.dlsym",
            "ctypes.cdata",
            "ctypes.addressof",
            "ctypes.string_at",
            "ctypes.wstring_at",
            "ctypes.call_function",
            "ctypes.PyObj_FromPtr",
        ]
    )
    frame_attrs = frozenset(["tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back", "f_locals", "f_globals"])
    blocked_imports = frozenset(["ctypes", "_ctypes"])

    def hook(event, args):
        if event in blocked:
            raise RuntimeError("blocked by the envhub checker: " + event)
        if event == "object.__getattr__" and len(args) == 2 and args[1] in frame_attrs:
            raise RuntimeError("blocked by the envhub checker: " + args[1])
        if event == "import" and args and args[0] in blocked_imports:
            raise RuntimeError("blocked by the envhub checker: import " + args[0])
        if event == "open" and args and isinstance(args[0], int):
            raise RuntimeError("blocked by the envhub checker: open of a file descriptor")

    sys.addaudithook(hook)
    gc_disable()

    out, passed, total = main_checked(
        program, entry_point, check, param, statements, test_ns, plain, restore, graveyard, verdict
    )
    text = "".join(out) + "\n__envhub_verdict_" + nonce + "__:" + '{"passed": %d, "total": %d}\n' % (passed, total)
    data = text.encode("utf-8", "replace")
    while data:
        n = write(1, data)
        data = data[n:]
    exit_now(0)


def main_checked(program, entry_point, check, param, statements, test_ns, plain, restore, graveyard, verdict):
    # Holds no secret: policy code runs below this frame.
    if check is None:
        return verdict(0, 1, {"test": "", "error": "the test defines no check()"})
    policy_ns = {"__name__": "solution", "__builtins__": __import__("builtins")}
    try:
        exec(compile(program, "solution.py", "exec"), policy_ns)
        fn = policy_ns[entry_point]
    except BaseException as e:
        graveyard.append(e)
        failure = {"test": "", "error": describe(e)}
        restore()
        return verdict(0, 1, failure)
    restore()

    def candidate(*args, **kwargs):
        args = tuple([plain(a, False) for a in args])
        kwargs = {k: plain(v, False) for k, v in dict.items(kwargs)}
        try:
            result = fn(*args, **kwargs)
            graveyard.append(result)
        finally:
            restore()
        return plain(result, True)

    # Tests may name the function itself (HumanEval/33 does).
    test_ns[entry_point] = candidate
    try:
        check(candidate)
        return verdict(1, 1, None)
    except BaseException as e:
        graveyard.append(e)
        restore()
    # Some assert failed: run check's body statement by statement to count
    # the tests that pass and show the first failure.
    test_ns[param] = candidate
    passed, total, failure = 0, 0, None
    for code, counts, source, left in statements:
        total += counts
        try:
            exec(code, test_ns)
            passed += counts
        except BaseException as e:
            graveyard.append(e)
            if failure is None:
                failure = {"test": source, "error": describe(e)}
                if left is not None:
                    try:
                        failure["got"] = str.__str__(repr(eval(left, test_ns)))[:500]
                    except BaseException as e2:
                        graveyard.append(e2)
                        failure["got"] = describe(e2)
            restore()
    if total == 0:
        total, passed = 1, int(failure is None)
    return verdict(passed, total, failure)


def describe(e):
    try:
        text = type(e).__name__ + ": " + str.__str__(str(e))
    except BaseException:
        text = type(e).__name__
    return text[:2000]
