/*
 * rsplib.wire._slots: build instances of slotted classes by storing their slots
 * directly, without running __new__/__init__.
 *
 * Decoders build millions of small immutable values (frozen, slotted
 * dataclasses; ipaddress objects). In Python each construction is a frame, a
 * few descriptor calls and a class switch; here it is one allocation and a
 * handful of pointer stores. Optional: rsplib.wire.fastvalues uses it when it
 * was compiled and checks every builder against the pure-Python constructor.
 *
 *     SlotBuilder(cls, names, fill=())
 *
 * returns a callable taking len(names) - len(fill) positional values; the
 * slots named by the last len(fill) names get the fixed values in fill.
 * Every name must be a writable object slot (a member descriptor of type
 * T_OBJECT_EX) of cls, which must not define __dict__ storage.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyTypeObject *cls;
    PyObject *fill;       /* tuple of fixed values for the trailing slots */
    Py_ssize_t nargs;     /* values the caller passes */
    Py_ssize_t nslots;    /* nargs + len(fill) */
    Py_ssize_t *offsets;  /* byte offset of each slot in the instance */
    vectorcallfunc vectorcall;
} SlotBuilder;

static PyObject *
SlotBuilder_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                       PyObject *kwnames)
{
    SlotBuilder *self = (SlotBuilder *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0) {
        PyErr_Format(PyExc_TypeError, "%s builder takes no keyword arguments",
                     self->cls->tp_name);
        return NULL;
    }
    if (nargs != self->nargs) {
        PyErr_Format(PyExc_TypeError, "%s builder takes %zd values (%zd given)",
                     self->cls->tp_name, self->nargs, nargs);
        return NULL;
    }
    PyObject *obj = self->cls->tp_alloc(self->cls, 0);
    if (obj == NULL) {
        return NULL;
    }
    char *base = (char *)obj;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        PyObject *value = args[i];
        Py_INCREF(value);
        *(PyObject **)(base + self->offsets[i]) = value;
    }
    for (Py_ssize_t i = nargs; i < self->nslots; i++) {
        PyObject *value = PyTuple_GET_ITEM(self->fill, i - nargs);
        Py_INCREF(value);
        *(PyObject **)(base + self->offsets[i]) = value;
    }
    return obj;
}

static Py_ssize_t
slot_offset(PyTypeObject *cls, PyObject *name)
{
    if (!PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "slot names must be strings");
        return -1;
    }
    PyObject *descr = _PyType_Lookup(cls, name); /* borrowed */
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "%R is not a slot of %s", name, cls->tp_name);
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type != T_OBJECT_EX || (member->flags & READONLY)) {
        PyErr_Format(PyExc_TypeError, "slot %R of %s is not a writable object slot", name,
                     cls->tp_name);
        return -1;
    }
    if (member->offset < (Py_ssize_t)sizeof(PyObject) ||
        member->offset + (Py_ssize_t)sizeof(PyObject *) > cls->tp_basicsize) {
        PyErr_Format(PyExc_TypeError, "slot %R of %s lies outside the instance", name,
                     cls->tp_name);
        return -1;
    }
    return member->offset;
}

static PyObject *
SlotBuilder_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *keywords[] = {"cls", "names", "fill", NULL};
    PyObject *cls = NULL, *names = NULL, *fill = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!|O!:SlotBuilder", keywords, &PyType_Type,
                                     &cls, &PyTuple_Type, &names, &PyTuple_Type, &fill)) {
        return NULL;
    }
    PyTypeObject *target = (PyTypeObject *)cls;
    if (target->tp_dictoffset != 0 || target->tp_itemsize != 0) {
        PyErr_Format(PyExc_TypeError, "%s instances must be fixed-size with slots only",
                     target->tp_name);
        return NULL;
    }
    if (fill == NULL) {
        fill = PyTuple_New(0);
        if (fill == NULL) {
            return NULL;
        }
    }
    else {
        Py_INCREF(fill);
    }
    Py_ssize_t nslots = PyTuple_GET_SIZE(names);
    Py_ssize_t nfill = PyTuple_GET_SIZE(fill);
    if (nfill > nslots) {
        Py_DECREF(fill);
        PyErr_SetString(PyExc_ValueError, "more fill values than slot names");
        return NULL;
    }
    SlotBuilder *self = (SlotBuilder *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(fill);
        return NULL;
    }
    self->fill = fill;
    self->nslots = nslots;
    self->nargs = nslots - nfill;
    self->offsets = PyMem_New(Py_ssize_t, nslots > 0 ? nslots : 1);
    if (self->offsets == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < nslots; i++) {
        Py_ssize_t offset = slot_offset(target, PyTuple_GET_ITEM(names, i));
        if (offset < 0) {
            Py_DECREF(self);
            return NULL;
        }
        self->offsets[i] = offset;
    }
    Py_INCREF(cls);
    self->cls = target;
    self->vectorcall = SlotBuilder_vectorcall;
    return (PyObject *)self;
}

static void
SlotBuilder_dealloc(SlotBuilder *self)
{
    Py_XDECREF(self->cls);
    Py_XDECREF(self->fill);
    PyMem_Free(self->offsets);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
SlotBuilder_repr(SlotBuilder *self)
{
    return PyUnicode_FromFormat("<SlotBuilder of %s>",
                                self->cls ? self->cls->tp_name : "nothing");
}

static PyTypeObject SlotBuilderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rsplib.wire._slots.SlotBuilder",
    .tp_basicsize = sizeof(SlotBuilder),
    .tp_dealloc = (destructor)SlotBuilder_dealloc,
    .tp_vectorcall_offset = offsetof(SlotBuilder, vectorcall),
    .tp_repr = (reprfunc)SlotBuilder_repr,
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "SlotBuilder(cls, names, fill=()): build cls instances by storing slots",
    .tp_new = SlotBuilder_new,
};

static struct PyModuleDef slots_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "rsplib.wire._slots",
    .m_doc = "Build instances of slotted classes by storing their slots directly.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__slots(void)
{
    if (PyType_Ready(&SlotBuilderType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&slots_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&SlotBuilderType);
    if (PyModule_AddObject(module, "SlotBuilder", (PyObject *)&SlotBuilderType) < 0) {
        Py_DECREF(&SlotBuilderType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
