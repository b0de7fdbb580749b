/*
 * envhub's entry points into CPython for WASI.
 *
 * Linked with libpython as a WASI reactor, so the module can be initialised
 * once and snapshotted (sandboxes/src/snapshot.rs), and every run starts from
 * the initialised interpreter:
 *
 *   envhub_init()  starts the interpreter and runs the init script given as
 *                  WASI argument 1 in a namespace of its own; the script
 *                  must define `run(argv)` and `setup(argv)`. Called once,
 *                  before the snapshot.
 *   envhub_setup() calls `setup([argument 1, ...])` and returns its status:
 *                  prepares state that many runs share (the host keeps what
 *                  it changed in memory and applies it to later instances).
 *   envhub_run()   calls `run([argument 1, argument 2, ...])` and returns the
 *                  exit status it returns. Called once per instance.
 *
 * Both return a non-zero status, after printing the Python error to stderr,
 * when something is wrong; nothing here exits the process.
 */
#include <Python.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

/* The init script's namespace, where `run` and `setup` live. */
static PyObject *entries = NULL;

/* The WASI arguments after the first, as a list of str (UTF-8, with
   surrogateescape for bytes that are not). */
static PyObject *wasi_args(void) {
    __wasi_size_t argc = 0, size = 0;
    if (__wasi_args_sizes_get(&argc, &size) != 0) {
        PyErr_SetString(PyExc_OSError, "envhub: cannot read the WASI arguments");
        return NULL;
    }
    uint8_t **argv = calloc(argc + 1, sizeof(uint8_t *));
    uint8_t *buf = malloc(size + 1);
    if (argv == NULL || buf == NULL) {
        free(argv);
        free(buf);
        return PyErr_NoMemory();
    }
    PyObject *list = NULL;
    if (__wasi_args_get(argv, buf) != 0) {
        PyErr_SetString(PyExc_OSError, "envhub: cannot read the WASI arguments");
        goto done;
    }
    list = PyList_New(0);
    for (__wasi_size_t i = 1; list != NULL && i < argc; i++) {
        const char *arg = (const char *)argv[i];
        PyObject *s = PyUnicode_DecodeUTF8(arg, (Py_ssize_t)strlen(arg), "surrogateescape");
        if (s == NULL || PyList_Append(list, s) != 0) {
            Py_CLEAR(list);
        }
        Py_XDECREF(s);
    }
done:
    free(argv);
    free(buf);
    return list;
}

/* Whether `ns` holds a callable named `name`. */
static int defines(PyObject *ns, const char *name) {
    PyObject *f = PyDict_GetItemString(ns, name);
    return f != NULL && PyCallable_Check(f);
}

__attribute__((export_name("envhub_init"))) int envhub_init(void) {
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.site_import = 0;
    config.parse_argv = 0;
    config.install_signal_handlers = 0;
    config.pathconfig_warnings = 0;
    config.module_search_paths_set = 1;
    PyStatus status = PyWideStringList_Append(&config.module_search_paths, L"/usr/local/lib/python311.zip");
    if (!PyStatus_Exception(status)) {
        status = PyConfig_SetString(&config, &config.program_name, L"python");
    }
    if (!PyStatus_Exception(status)) {
        status = Py_InitializeFromConfig(&config);
    }
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        fprintf(stderr, "envhub: cannot start CPython: %s\n", status.err_msg ? status.err_msg : "(no message)");
        return 1;
    }

    PyObject *args = wasi_args();
    PyObject *ns = PyDict_New();
    PyObject *code = NULL, *result = NULL;
    if (args == NULL || ns == NULL) goto fail;
    if (PyList_GET_SIZE(args) < 1) {
        PyErr_SetString(PyExc_ValueError, "envhub_init: no init script (WASI argument 1)");
        goto fail;
    }
    if (PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) != 0) goto fail;
    PyObject *name = PyUnicode_FromString("envhub_init");
    int named = name != NULL && PyDict_SetItemString(ns, "__name__", name) == 0;
    Py_XDECREF(name);
    if (!named) goto fail;
    const char *source = PyUnicode_AsUTF8(PyList_GET_ITEM(args, 0));
    if (source == NULL) goto fail;
    code = Py_CompileString(source, "<envhub-init>", Py_file_input);
    if (code == NULL) goto fail;
    result = PyEval_EvalCode(code, ns, ns);
    if (result == NULL) goto fail;
    if (!defines(ns, "run") || !defines(ns, "setup")) {
        PyErr_SetString(PyExc_NameError, "envhub_init: the init script must define callables `run` and `setup`");
        goto fail;
    }
    entries = ns;
    Py_INCREF(entries);
    Py_DECREF(result);
    Py_DECREF(code);
    Py_DECREF(ns);
    Py_DECREF(args);
    fflush(stdout);
    fflush(stderr);
    return 0;

fail:
    PyErr_Print();
    Py_XDECREF(result);
    Py_XDECREF(code);
    Py_XDECREF(ns);
    Py_XDECREF(args);
    fflush(stderr);
    return 1;
}

/* Calls the init script's function `name` with the WASI arguments; returns
   its int result, or 1 after printing the error. */
static int call_entry(const char *name) {
    PyObject *fn = entries ? PyDict_GetItemString(entries, name) : NULL;
    if (fn == NULL) {
        fprintf(stderr, "envhub: `%s` is not defined (was envhub_init called?)\n", name);
        return 1;
    }
    PyObject *args = wasi_args();
    PyObject *result = args ? PyObject_CallOneArg(fn, args) : NULL;
    Py_XDECREF(args);
    if (result == NULL) {
        PyErr_Print();
        fflush(stderr);
        return 1;
    }
    long status = PyLong_AsLong(result);
    Py_DECREF(result);
    if (status == -1 && PyErr_Occurred()) {
        PyErr_Print();
        fflush(stderr);
        return 1;
    }
    return (int)status;
}

__attribute__((export_name("envhub_setup"))) int envhub_setup(void) { return call_entry("setup"); }

__attribute__((export_name("envhub_run"))) int envhub_run(void) { return call_entry("run"); }
