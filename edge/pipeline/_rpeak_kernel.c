/*
 * Compiled fast paths of the R-peak detector (edge/pipeline/ecg.py): the hump judgement, the
 * search for the highest humps of the energy envelope, the placement of beats on the ECG and the
 * detector's two recursive filters. Both are optional; without this module the
 * detector runs the same steps in Python and numpy, with the same results (the tests compare them).
 *
 * 1. The judgement.
 *
 * RPeakDetector._judge decides, hump by hump, whether a candidate is a beat, noise or nothing (too
 * close to the last beat, or motion inside a burst). The common case is a handful of comparisons
 * and running averages per hump, which costs far more in the interpreter than here. This module
 * runs exactly that common case over the detector's own list of candidate tuples and stops, without
 * consuming it, at the first candidate that needs the rare paths kept in Python: a hump so late that
 * a beat seems missing (search-back), or an early or late hump whose motion-burst flag is not known
 * yet (it waits for the gate). Python handles that one candidate and calls back in.
 *
 * The arithmetic is the Python loop's, operation for operation, in IEEE double precision (built
 * with floating-point contraction off, so no fused multiply-add changes a last bit): with or without
 * this module the detector returns the same indices, which the tests check on whole records.
 *
 * run(candidates, position, state, rr, ordered, accepted, since, constants) -> (position, *state)
 *   candidates: list of (hump index: int, height: float, R-peak index: int, squared slope: float,
 *               burst flag: bool or None)
 *   position:   first candidate to judge
 *   state:      (spk, npk, last beat: candidate tuple, slope level, RR average)
 *   rr:         list of the last (up to 8) RR intervals in samples, oldest first; updated in place
 *   ordered:    the same values ascending; updated in place
 *   accepted:   beats are appended to it
 *   since:      noise humps since the last beat are appended to it; emptied at a beat
 *   constants:  (refractory, T-wave window, threshold share, burst RR share, search-back factor,
 *                early slope share)
 * Returns the first candidate not judged (len(candidates) when all were) and the new state.
 *
 * 2. The hump search, as edge.pipeline.ecg.RPeakDetector._humps and edge.pipeline._envelope.dominant
 *    define it.
 *
 * humps(values, lo, hi, first, last, radius, out_index, out_height) -> count
 *   values:     float64 buffer (C-contiguous); samples values[lo - 1:hi + 1] are read
 *   a hump:     j in [lo, hi) with values[j] > values[j - 1] and values[j] >= values[j + 1]
 *   kept:       humps with first <= j - lo < last and a height above zero that no hump within
 *               radius samples beats (a later one higher, or an earlier one at least as high),
 *               looking at up to 8 humps on each side
 *   out_index:  int64 buffer; the kept humps' j - lo, ascending
 *   out_height: float64 buffer; their heights
 * Both output buffers need room for (hi - lo + 1) / 2 + 1 values.
 *
 * 3. The placement, as edge.pipeline.ecg.RPeakDetector._deflection defines it.
 *
 * deflections(x, starts, width, prefiltered, out) -> None
 *   x:           float64 buffer (C-contiguous); window i is x[starts[i]:starts[i] + width]
 *   starts:      int64 buffer
 *   prefiltered: the offset of each window's largest absolute value; otherwise of its maximum or
 *                its minimum, whichever is further from the window's baseline: the mean of its
 *                first and last width / 8 samples, added up pair by pair (first + last, second +
 *                second last, ...) in order. The first of equal values wins; a NaN wins outright.
 *   out:         int64 buffer; the offsets, one per window
 *
 * 4. The filters, as scipy.signal.lfilter runs a recursive filter (len(a) >= 2) on float64.
 *
 * lfilter(b, a, x, y, z) -> None
 *   b, a: float64 buffers, up to 16 coefficients each, a[0] not zero
 *   x:    float64 buffer, the input; y: float64 buffer with room for it, the output
 *   z:    float64 buffer of max(len(a), len(b)) - 1 values: the state, updated in place (scipy's zi
 *         on the way in, its zf on the way out)
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

#define RR_KEPT 8
#define NEIGHBOURS 8 /* as _NEIGHBOURS in edge/pipeline/_envelope.py */

typedef struct {
    long long refractory;
    long long t_wave;
    double threshold_share;
    double burst_rr;
    double search_back;
    double early_slope;
} constants_t;

static int
read_rr(PyObject *rr, long long *values, Py_ssize_t *count)
{
    Py_ssize_t n = PyList_GET_SIZE(rr);
    if (n > RR_KEPT) {
        PyErr_SetString(PyExc_ValueError, "rr holds more than 8 intervals");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        values[i] = PyLong_AsLongLong(PyList_GET_ITEM(rr, i));
        if (values[i] == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    *count = n;
    return 0;
}

static int
write_list(PyObject *list, const long long *values, Py_ssize_t count)
{
    PyObject *fresh = PyList_New(count);
    if (fresh == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyLong_FromLongLong(values[i]);
        if (item == NULL) {
            Py_DECREF(fresh);
            return -1;
        }
        PyList_SET_ITEM(fresh, i, item);
    }
    int status = PyList_SetSlice(list, 0, PyList_GET_SIZE(list), fresh);
    Py_DECREF(fresh);
    return status;
}

/* Median of the ascending ``ordered[0:count]`` as the Python code takes it: the mean of the two
 * middle values (integer sum, then halved in double precision). */
static double
median(const long long *ordered, Py_ssize_t count)
{
    return 0.5 * (double)(ordered[(count - 1) / 2] + ordered[count / 2]);
}

/* Hump index, height and squared slope of one candidate tuple; -1 with an exception set if it is
 * not one. */
static int
read_candidate(PyObject *candidate, long long *index, double *height, double *slope)
{
    if (!PyTuple_Check(candidate) || PyTuple_GET_SIZE(candidate) != 5) {
        PyErr_SetString(PyExc_TypeError, "a candidate must be a 5-tuple");
        return -1;
    }
    *index = PyLong_AsLongLong(PyTuple_GET_ITEM(candidate, 0));
    if (*index == -1 && PyErr_Occurred()) {
        return -1;
    }
    *height = PyFloat_AsDouble(PyTuple_GET_ITEM(candidate, 1));
    if (*height == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    *slope = PyFloat_AsDouble(PyTuple_GET_ITEM(candidate, 3));
    if (*slope == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    return 0;
}

static PyObject *
run(PyObject *module, PyObject *args)
{
    PyObject *candidates, *rr, *ordered_list, *accepted, *since, *last;
    Py_ssize_t position;
    double spk, npk, slope_level, average;
    constants_t k;

    (void)module;
    if (!PyArg_ParseTuple(args, "O!n(ddOdd)O!O!O!O!(LLdddd):run",
                          &PyList_Type, &candidates, &position,
                          &spk, &npk, &last, &slope_level, &average,
                          &PyList_Type, &rr, &PyList_Type, &ordered_list,
                          &PyList_Type, &accepted, &PyList_Type, &since,
                          &k.refractory, &k.t_wave, &k.threshold_share, &k.burst_rr, &k.search_back,
                          &k.early_slope)) {
        return NULL;
    }
    long long rr_values[RR_KEPT], ordered[RR_KEPT];
    Py_ssize_t rr_count, ordered_count;
    if (read_rr(rr, rr_values, &rr_count) < 0 || read_rr(ordered_list, ordered, &ordered_count) < 0) {
        return NULL;
    }
    if (ordered_count != rr_count) {
        PyErr_SetString(PyExc_ValueError, "rr and ordered differ in length");
        return NULL;
    }
    long long last_index;
    double last_height, last_slope;
    if (read_candidate(last, &last_index, &last_height, &last_slope) < 0) {
        return NULL;
    }
    (void)last_height;
    double threshold = npk + k.threshold_share * (spk - npk);
    double early = k.burst_rr * average, late = k.search_back * average;
    double early_slope = k.early_slope * slope_level, t_slope = 0.25 * last_slope;
    int rr_changed = 0;
    Py_ssize_t n = PyList_GET_SIZE(candidates);
    if (position < 0) {
        position = 0;
    }
    for (; position < n; position++) {
        PyObject *candidate = PyList_GET_ITEM(candidates, position);
        long long index;
        double height, slope;
        if (read_candidate(candidate, &index, &height, &slope) < 0) {
            return NULL;
        }
        PyObject *burst_item = PyTuple_GET_ITEM(candidate, 4);
        long long gap = index - last_index;
        double gap_f = (double)gap;
        int in_window = early <= gap_f && gap_f <= late;
        if (burst_item == Py_None && !in_window) {
            break; /* waits for the gate's flag: Python's */
        }
        if (gap_f > late) {
            break; /* search-back: Python's */
        }
        if (gap < k.refractory) {
            continue;
        }
        int burst = burst_item == Py_None ? 0 : PyObject_IsTrue(burst_item);
        if (burst < 0) {
            return NULL;
        }
        if (burst && gap_f < early) {
            continue; /* motion inside a burst: neither beat nor noise */
        }
        if (height <= threshold || (gap < k.t_wave && slope < t_slope) || (gap_f < early && slope < early_slope)) {
            npk = 0.125 * height + 0.875 * npk;
            threshold = npk + k.threshold_share * (spk - npk);
            if (PyList_Append(since, candidate) < 0) {
                return NULL;
            }
            continue;
        }
        /* A beat: the RR interval joins the last eight (the oldest leaves). */
        if (rr_count == RR_KEPT) {
            long long oldest = rr_values[0];
            memmove(rr_values, rr_values + 1, (RR_KEPT - 1) * sizeof rr_values[0]);
            rr_count--;
            Py_ssize_t at = 0;
            while (ordered[at] != oldest) {
                at++;
            }
            memmove(ordered + at, ordered + at + 1, (size_t)(rr_count - at) * sizeof ordered[0]);
        }
        rr_values[rr_count] = gap;
        Py_ssize_t at = rr_count;
        while (at > 0 && ordered[at - 1] > gap) {
            ordered[at] = ordered[at - 1];
            at--;
        }
        ordered[at] = gap;
        rr_count++;
        rr_changed = 1;
        average = median(ordered, rr_count);
        early = k.burst_rr * average;
        late = k.search_back * average;
        spk = 0.125 * height + 0.875 * spk;
        threshold = npk + k.threshold_share * (spk - npk);
        slope_level = 0.125 * slope + 0.875 * slope_level;
        early_slope = k.early_slope * slope_level;
        t_slope = 0.25 * slope;
        last = candidate;
        last_index = index;
        if (PyList_Append(accepted, candidate) < 0) {
            return NULL;
        }
        if (PyList_SetSlice(since, 0, PyList_GET_SIZE(since), NULL) < 0) {
            return NULL;
        }
    }
    if (rr_changed && (write_list(rr, rr_values, rr_count) < 0 || write_list(ordered_list, ordered, rr_count) < 0)) {
        return NULL;
    }
    return Py_BuildValue("(nddOdd)", position, spk, npk, last, slope_level, average);
}


/* A C-contiguous buffer of ``itemsize``-byte items of the given struct format kind ('d': double,
 * 'q' or 'l': 64-bit integer), writable if asked. */
static int
get_buffer(PyObject *object, Py_buffer *view, char kind, int writable, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object, view, flags) < 0) {
        return -1;
    }
    const char *format = view->format == NULL ? "B" : view->format;
    if (*format == '<' || *format == '=' || *format == '@') {
        format++;
    }
    int matches = view->ndim == 1 && view->itemsize == 8
                  && (kind == 'd' ? *format == 'd' : (*format == 'q' || *format == 'l'))
                  && format[1] == '\0';
    if (!matches) {
        PyErr_Format(PyExc_TypeError, "%s must be a one-dimensional %s array", name,
                     kind == 'd' ? "float64" : "int64");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* An array argument: the object, its name in messages, 'd' (float64) or 'q' (int64), writable. */
typedef struct {
    PyObject *object;
    const char *name;
    char kind;
    int writable;
    Py_buffer view;
} array_arg;

#define ARRAY(o, n, k, w) {.object = (o), .name = (n), .kind = (k), .writable = (w)}

/* The buffers of all ``count`` array arguments, or none of them (with the exception set). */
static int
get_buffers(array_arg *arrays, int count)
{
    for (int i = 0; i < count; i++) {
        if (get_buffer(arrays[i].object, &arrays[i].view, arrays[i].kind, arrays[i].writable, arrays[i].name) < 0) {
            while (i-- > 0) {
                PyBuffer_Release(&arrays[i].view);
            }
            return -1;
        }
    }
    return 0;
}

static void
release_buffers(array_arg *arrays, int count)
{
    for (int i = 0; i < count; i++) {
        PyBuffer_Release(&arrays[i].view);
    }
}


static PyObject *
humps(PyObject *module, PyObject *args)
{
    PyObject *values_object, *index_object, *height_object;
    Py_ssize_t lo, hi, first, last, radius;

    (void)module;
    if (!PyArg_ParseTuple(args, "OnnnnnOO:humps", &values_object, &lo, &hi, &first, &last, &radius,
                          &index_object, &height_object)) {
        return NULL;
    }
    array_arg arrays[3] = {
        ARRAY(values_object, "values", 'd', 0), ARRAY(index_object, "out_index", 'q', 1),
        ARRAY(height_object, "out_height", 'd', 1),
    };
    if (get_buffers(arrays, 3) < 0) {
        return NULL;
    }
    Py_buffer *values_view = &arrays[0].view, *index_view = &arrays[1].view, *height_view = &arrays[2].view;
    const double *values = values_view->buf;
    long long *out_index = index_view->buf;
    double *out_height = height_view->buf;
    Py_ssize_t room = index_view->shape[0] < height_view->shape[0] ? index_view->shape[0] : height_view->shape[0];
    Py_ssize_t kept = -1;
    if (lo < 1 || hi < lo || hi + 1 > values_view->shape[0]) {
        PyErr_SetString(PyExc_IndexError, "humps: lo - 1 .. hi must lie inside values");
    } else if (room < (hi - lo + 1) / 2 + 1) {
        PyErr_SetString(PyExc_ValueError, "humps: the output buffers are too short");
    } else {
        /* Every hump into the outputs first, without a branch per sample (which of the samples
         * of a noisy envelope are humps is a coin toss for branch prediction). */
        Py_ssize_t count = 0;
        for (Py_ssize_t j = lo; j < hi; j++) {
            double value = values[j];
            out_index[count] = (long long)(j - lo);
            out_height[count] = value;
            count += (value > values[j - 1]) & (value >= values[j + 1]);
        }
        /* Then the kept ones, moved to the front in place. A hump is only ever written at or
         * before its own slot, so the humps after the one being judged are intact; the ones before
         * it are read from a copy of the last NEIGHBOURS originals. */
        long long before_index[NEIGHBOURS];
        double before_height[NEIGHBOURS];
        kept = 0;
        for (Py_ssize_t i = 0; i < count; i++) {
            long long hump = out_index[i];
            double height = out_height[i];
            int keep = hump >= first && hump < last && height > 0.0;
            Py_ssize_t stop = i + NEIGHBOURS + 1 < count ? i + NEIGHBOURS + 1 : count;
            for (Py_ssize_t j = i + 1; keep && j < stop; j++) {
                if (out_index[j] - hump > radius) {
                    break;
                }
                keep = !(out_height[j] > height);
            }
            Py_ssize_t start = i - NEIGHBOURS > 0 ? i - NEIGHBOURS : 0;
            for (Py_ssize_t j = i - 1; keep && j >= start; j--) {
                if (hump - before_index[j % NEIGHBOURS] > radius) {
                    break;
                }
                keep = !(before_height[j % NEIGHBOURS] >= height);
            }
            before_index[i % NEIGHBOURS] = hump;
            before_height[i % NEIGHBOURS] = height;
            if (keep) {
                out_index[kept] = hump;
                out_height[kept] = height;
                kept++;
            }
        }
    }
    release_buffers(arrays, 3);
    if (kept < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(kept);
}

/* Offset of the largest deflection in one window (see deflections). */
static long long
deflection(const double *w, Py_ssize_t width, int prefiltered)
{
    Py_ssize_t high = 0, low = 0;
    if (prefiltered) {
        double top = fabs(w[0]);
        if (isnan(top)) {
            return 0;
        }
        for (Py_ssize_t i = 1; i < width; i++) {
            double value = fabs(w[i]);
            if (isnan(value)) {
                return (long long)i;
            }
            if (value > top) {
                top = value;
                high = i;
            }
        }
        return (long long)high;
    }
    for (Py_ssize_t i = 0; i < width; i++) {
        double value = w[i];
        if (isnan(value)) {
            return (long long)i;
        }
        if (value > w[high]) {
            high = i;
        } else if (value < w[low]) {
            low = i;
        }
    }
    Py_ssize_t edge = width / 8 > 1 ? width / 8 : 1;
    double baseline = w[0] + w[width - edge];
    for (Py_ssize_t k = 1; k < edge; k++) {
        baseline = baseline + (w[k] + w[width - edge + k]);
    }
    baseline = baseline * (0.5 / (double)edge);
    double up = w[high] - baseline, down = baseline - w[low];
    return (long long)(up >= down ? high : low);
}

static PyObject *
deflections(PyObject *module, PyObject *args)
{
    PyObject *x_object, *starts_object, *out_object;
    Py_ssize_t width;
    int prefiltered;

    (void)module;
    if (!PyArg_ParseTuple(args, "OOnpO:deflections", &x_object, &starts_object, &width, &prefiltered,
                          &out_object)) {
        return NULL;
    }
    array_arg arrays[3] = {
        ARRAY(x_object, "x", 'd', 0), ARRAY(starts_object, "starts", 'q', 0), ARRAY(out_object, "out", 'q', 1),
    };
    if (get_buffers(arrays, 3) < 0) {
        return NULL;
    }
    const double *x = arrays[0].view.buf;
    const long long *starts = arrays[1].view.buf;
    long long *out = arrays[2].view.buf;
    Py_ssize_t count = arrays[1].view.shape[0], size = arrays[0].view.shape[0];
    int ok = 1;
    if (width < 1 || arrays[2].view.shape[0] < count) {
        PyErr_SetString(PyExc_ValueError, "deflections: width must be positive and out as long as starts");
        ok = 0;
    }
    for (Py_ssize_t i = 0; ok && i < count; i++) {
        if (starts[i] < 0 || starts[i] > (long long)(size - width)) {
            PyErr_SetString(PyExc_IndexError, "deflections: a window reaches outside x");
            ok = 0;
        }
    }
    for (Py_ssize_t i = 0; ok && i < count; i++) {
        out[i] = deflection(x + starts[i], width, prefiltered);
    }
    release_buffers(arrays, 3);
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}

#define MAX_TAPS 16

/* Direct form II transposed, operation for operation as scipy.signal.lfilter computes it for
 * float64 (coefficients divided by a[0]; y = z[0] + b[0] x; z[i] = (z[i+1] + x b[i+1]) - y a[i+1];
 * the last z[L-2] = x b[L-1] - y a[L-1]), so both give the same bits. */
static inline void
filter_run(const double *b, const double *a, Py_ssize_t taps, const double *x, double *y, Py_ssize_t n,
           double *z)
{
    double state[MAX_TAPS];
    for (Py_ssize_t i = 0; i < taps - 1; i++) {
        state[i] = z[i];
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        double xn = x[k];
        double yn = state[0] + b[0] * xn;
        for (Py_ssize_t i = 0; i < taps - 2; i++) {
            state[i] = state[i + 1] + xn * b[i + 1] - yn * a[i + 1];
        }
        state[taps - 2] = xn * b[taps - 1] - yn * a[taps - 1];
        y[k] = yn;
    }
    for (Py_ssize_t i = 0; i < taps - 1; i++) {
        z[i] = state[i];
    }
}

static PyObject *
lfilter(PyObject *module, PyObject *args)
{
    PyObject *b_object, *a_object, *x_object, *y_object, *z_object;

    (void)module;
    if (!PyArg_ParseTuple(args, "OOOOO:lfilter", &b_object, &a_object, &x_object, &y_object, &z_object)) {
        return NULL;
    }
    array_arg arrays[5] = {
        ARRAY(b_object, "b", 'd', 0), ARRAY(a_object, "a", 'd', 0), ARRAY(x_object, "x", 'd', 0), ARRAY(y_object, "y", 'd', 1),
        ARRAY(z_object, "z", 'd', 1),
    };
    if (get_buffers(arrays, 5) < 0) {
        return NULL;
    }
    Py_buffer *b_view = &arrays[0].view, *a_view = &arrays[1].view, *x_view = &arrays[2].view;
    Py_buffer *y_view = &arrays[3].view, *z_view = &arrays[4].view;
    Py_ssize_t nb = b_view->shape[0], na = a_view->shape[0], taps = nb > na ? nb : na;
    const double *a_in = a_view->buf;
    int ok = 0;
    if (na < 2) {
        /* scipy runs those as a convolution, with other arithmetic. */
        PyErr_SetString(PyExc_ValueError, "lfilter: a needs two coefficients or more (a recursive filter)");
    } else if (nb < 1 || taps > MAX_TAPS || a_in[0] == 0.0) {
        PyErr_SetString(PyExc_ValueError, "lfilter: 1 to 16 coefficients each, and a[0] not zero");
    } else if (z_view->shape[0] != taps - 1 || y_view->shape[0] < x_view->shape[0]) {
        PyErr_SetString(PyExc_ValueError, "lfilter: z needs max(len(a), len(b)) - 1 values, y room for x");
    } else {
        double b[MAX_TAPS] = {0.0}, a[MAX_TAPS] = {0.0};
        const double *b_in = b_view->buf;
        double a0 = a_in[0];
        for (Py_ssize_t i = 0; i < nb; i++) {
            b[i] = b_in[i] / a0;
        }
        for (Py_ssize_t i = 0; i < na; i++) {
            a[i] = a_in[i] / a0;
        }
        /* The common lengths by name, so that each gets a loop unrolled for it. */
        double *y = y_view->buf, *z = z_view->buf;
        const double *x = x_view->buf;
        Py_ssize_t n = x_view->shape[0];
        switch (taps) {
        case 2: filter_run(b, a, 2, x, y, n, z); break;
        case 3: filter_run(b, a, 3, x, y, n, z); break;
        case 5: filter_run(b, a, 5, x, y, n, z); break;
        case 7: filter_run(b, a, 7, x, y, n, z); break;
        case 9: filter_run(b, a, 9, x, y, n, z); break;
        default: filter_run(b, a, taps, x, y, n, z); break;
        }
        ok = 1;
    }
    release_buffers(arrays, 5);
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"run", run, METH_VARARGS, "Judge candidates from a position until one needs the Python path."},
    {"humps", humps, METH_VARARGS, "Indices and heights of the envelope's highest humps."},
    {"lfilter", lfilter, METH_VARARGS, "scipy.signal.lfilter of one float64 signal, into y, state z in place."},
    {"deflections", deflections, METH_VARARGS, "Offset of the largest deflection in each ECG window."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_rpeak_kernel",
    "Compiled fast paths of the R-peak detector: hump judgement, hump search, beat placement.",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__rpeak_kernel(void)
{
    return PyModule_Create(&module);
}
