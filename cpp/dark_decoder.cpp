// cppimport: heatmap decoder (argmax, quarter offset, DARK) in C++. Taught in 07_dark_cpp.ipynb.
//
// Built two ways from this one file:
//   * on first use by cppimport (course_lib.native.load_extension()): the module lands beside this
//     file as dark_decoder.<python-tag>.so; the Mako block at the END of the file sets the flags;
//   * ahead of time by `pip install .` (setup.py, pybind11's Pybind11Extension) as
//     course_lib/dark_decoder.<python-tag>.so.
//
// The decoding rules are exactly those of course_lib.decode (notebook 06):
//   argmax  first maximum in row-major order; score = the map's maximum; a map whose maximum is
//           not positive gets coordinates (-1, -1), its maximum as score, and is never refined.
//   quarter x += 0.25 * sign(h[y, x+1] - h[y, x-1]) and y += 0.25 * sign(h[y+1, x] - h[y-1, x])
//           only when 2 <= x <= W-2 and 2 <= y <= H-2, both axes at once (HRNet's and
//           SimpleBaseline's get_final_preds: 1 < px < W-1 and 1 < py < H-1).
//   dark    modulation: Gaussian blur with cv2.GaussianBlur's kernel (sigma from the kernel size
//           as OpenCV computes it), zero padding, rescaled to the original maximum; L = log of
//           max(value, 1e-10); central-difference gradient and Hessian at the integer argmax;
//           refined only when 2 <= x <= W-3 and 2 <= y <= H-3 and the Hessian is negative
//           definite; each component of the step -H^{-1} g clipped to [-1, 1]. newton_step below
//           is course_lib.dark.newton_step line by line; course_lib.native passes the kernel, the
//           log floor and the clip of course_lib.dark, so both decoders follow one rule.
//
// Why only a window is blurred: the derivatives need L at 13 points within 2 pixels of the peak,
// and a blurred value at a point depends only on the input within the kernel radius r of it, so
// a window of half-size r + 2 around the peak gives exactly the same blurred values as a blur of
// the whole map. The rescaling to the original maximum multiplies every value by one constant s,
// which cancels in differences of logarithms (log(s v) = log s + log v), so the scale only
// matters where the 1e-10 floor bites. We take s = max / (largest value of the blurred 5x5 patch
// around the argmax), which is the full-map rescale whenever the blurred map peaks there.
//
// Input: a float32 array [N, K, H, W]; pybind11 makes a C-contiguous copy only when the array is
// not already C-contiguous float32 (the input is never written). NaN or inf -> ValueError.
// The work runs without the GIL, in parallel over the N*K maps with OpenMP when compiled with it.
//
// Bounds (the same as course_lib.dark's, so both decoders refuse the same input): DARK's
// blur_kernel is at most 2 * max(H, W, 5) + 1, and the per-thread buffer is 5 doubles per window
// row (never a copy of the window); the thread count is clamped to the processors; an exception
// inside the parallel region (e.g. std::bad_alloc) is caught there and rethrown after it, so it
// reaches Python as an exception (MemoryError, ValueError) instead of aborting the process.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace py = pybind11;

namespace {

enum Method { ARGMAX = 0, QUARTER = 1, DARK = 2 };

constexpr int kMaxKernel = (1 << 21) + 1;  // course_lib.dark.MAX_KERNEL

// What course_lib.dark fixes for both decoders: the blur kernel, the log floor, the step clip.
struct DarkRule {
    std::vector<double> g;   // 1-D blur kernel (odd length 2r + 1)
    double log_floor = 1e-10;
    double max_step = 1.0;
};

// The Newton step -H^{-1} g of the quadratic model, only where the Hessian [[dxx, dxy],
// [dxy, dyy]] is negative definite (a maximum), each component clipped to [-max_step, max_step].
// Returns false where no step is taken. The same lines as course_lib.dark.newton_step.
inline bool newton_step(double dx, double dy, double dxx, double dyy, double dxy, double max_step,
                        double* sx, double* sy) {
    const double det = dxx * dyy - dxy * dxy;
    if (!(dxx < 0.0 && det > 0.0)) return false;
    *sx = std::min(max_step, std::max(-max_step, -(dyy * dx - dxy * dy) / det));
    *sy = std::min(max_step, std::max(-max_step, -(dxx * dy - dxy * dx) / det));
    return true;
}

// The 1-D kernel of cv2.getGaussianKernel(ksize, 0) as OpenCV computes it: a fixed table for
// small kernels (ksize <= 9 in OpenCV 5; 4.x computes 9), otherwise sigma = 0.3 * ((ksize - 1) *
// 0.5 - 1) + 0.8 and weights exp(-x^2 / (2 sigma^2)) normalised to sum 1, in double precision
// (course_lib.native passes course_lib.dark's kernel, so both backends use the same weights).
std::vector<double> opencv_gaussian_kernel(int ksize) {
    static const double t1[] = {1.0};
    static const double t3[] = {0.25, 0.5, 0.25};
    static const double t5[] = {0.0625, 0.25, 0.375, 0.25, 0.0625};
    static const double t7[] = {0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125};
    static const double t9[] = {0.015625,   0.05078125, 0.1171875,  0.19921875, 0.234375,
                                0.19921875, 0.1171875,  0.05078125, 0.015625};  // OpenCV >= 5
    const double* table = nullptr;
    if (ksize == 1) table = t1;
    if (ksize == 3) table = t3;
    if (ksize == 5) table = t5;
    if (ksize == 7) table = t7;
    if (ksize == 9) table = t9;
    std::vector<double> k(ksize);
    if (table) {
        for (int i = 0; i < ksize; ++i) k[i] = table[i];
        return k;
    }
    const double sigma = 0.3 * ((ksize - 1) * 0.5 - 1.0) + 0.8;
    const double scale = -0.5 / (sigma * sigma);
    double sum = 0.0;
    for (int i = 0; i < ksize; ++i) {
        const double x = i - (ksize - 1) * 0.5;
        k[i] = std::exp(scale * x * x);
        sum += k[i];
    }
    for (int i = 0; i < ksize; ++i) k[i] /= sum;
    return k;
}

// Maximum of p[0..n) and the index of its first occurrence (numpy's argmax). Two passes over a
// map that sits in the L1 cache: a branch-free SIMD max, then a SIMD search for the first element
// equal to it. `bad` is set when the map holds a NaN or an infinity: x - x is 0 for every finite
// x and NaN otherwise, accumulated in the same pass at almost no cost.
// x86-64: SSE2 (always there) or AVX2, picked at run time (never -march=native: a module built
// on one CPU must run on another); elsewhere the plain loops below.
inline int64_t first_index_of(const float* p, int64_t begin, int64_t n, float m) {
    for (int64_t k = begin; k < n; ++k)
        if (p[k] == m) return k;
    return 0;
}

inline int64_t first_argmax_scalar(const float* p, int64_t n, float* out_max, bool* out_bad) {
    float m = p[0], chk = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
        m = p[i] > m ? p[i] : m;
        chk += p[i] - p[i];
    }
    *out_max = m;
    *out_bad = !(chk == 0.0f);
    return first_index_of(p, 0, n, m);
}

#if defined(__x86_64__) || defined(_M_X64)
inline int64_t first_argmax_sse2(const float* p, int64_t n, float* out_max, bool* out_bad) {
    if (n < 16) return first_argmax_scalar(p, n, out_max, out_bad);
    __m128 a0 = _mm_loadu_ps(p), a1 = a0, a2 = a0, a3 = a0;
    __m128 c0 = _mm_setzero_ps(), c1 = c0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m128 v0 = _mm_loadu_ps(p + i), v1 = _mm_loadu_ps(p + i + 4);
        const __m128 v2 = _mm_loadu_ps(p + i + 8), v3 = _mm_loadu_ps(p + i + 12);
        a0 = _mm_max_ps(a0, v0);
        a1 = _mm_max_ps(a1, v1);
        a2 = _mm_max_ps(a2, v2);
        a3 = _mm_max_ps(a3, v3);
        c0 = _mm_add_ps(c0, _mm_add_ps(_mm_sub_ps(v0, v0), _mm_sub_ps(v1, v1)));
        c1 = _mm_add_ps(c1, _mm_add_ps(_mm_sub_ps(v2, v2), _mm_sub_ps(v3, v3)));
    }
    float lanes[4], chk[4];
    _mm_storeu_ps(lanes, _mm_max_ps(_mm_max_ps(a0, a1), _mm_max_ps(a2, a3)));
    _mm_storeu_ps(chk, _mm_add_ps(c0, c1));
    float m = lanes[0], bad = chk[0] + chk[1] + chk[2] + chk[3];
    for (int j = 1; j < 4; ++j) m = lanes[j] > m ? lanes[j] : m;
    for (; i < n; ++i) {
        m = p[i] > m ? p[i] : m;
        bad += p[i] - p[i];
    }
    *out_max = m;
    *out_bad = !(bad == 0.0f);
    const __m128 mm = _mm_set1_ps(m);
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
        const int mask = _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(p + k), mm));
        if (mask) return k + __builtin_ctz(static_cast<unsigned>(mask));
    }
    return first_index_of(p, k, n, m);
}

__attribute__((target("avx2"))) int64_t first_argmax_avx2(const float* p, int64_t n, float* out_max,
                                                          bool* out_bad) {
    if (n < 32) return first_argmax_sse2(p, n, out_max, out_bad);
    __m256 a0 = _mm256_loadu_ps(p), a1 = a0, a2 = a0, a3 = a0;
    __m256 c0 = _mm256_setzero_ps(), c1 = c0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256 v0 = _mm256_loadu_ps(p + i), v1 = _mm256_loadu_ps(p + i + 8);
        const __m256 v2 = _mm256_loadu_ps(p + i + 16), v3 = _mm256_loadu_ps(p + i + 24);
        a0 = _mm256_max_ps(a0, v0);
        a1 = _mm256_max_ps(a1, v1);
        a2 = _mm256_max_ps(a2, v2);
        a3 = _mm256_max_ps(a3, v3);
        c0 = _mm256_add_ps(c0, _mm256_add_ps(_mm256_sub_ps(v0, v0), _mm256_sub_ps(v1, v1)));
        c1 = _mm256_add_ps(c1, _mm256_add_ps(_mm256_sub_ps(v2, v2), _mm256_sub_ps(v3, v3)));
    }
    float lanes[8], chk[8];
    _mm256_storeu_ps(lanes, _mm256_max_ps(_mm256_max_ps(a0, a1), _mm256_max_ps(a2, a3)));
    _mm256_storeu_ps(chk, _mm256_add_ps(c0, c1));
    float m = lanes[0], bad = 0.0f;
    for (int j = 0; j < 8; ++j) {
        m = lanes[j] > m ? lanes[j] : m;
        bad += chk[j];
    }
    for (; i < n; ++i) {
        m = p[i] > m ? p[i] : m;
        bad += p[i] - p[i];
    }
    *out_max = m;
    *out_bad = !(bad == 0.0f);
    const __m256 mm = _mm256_set1_ps(m);
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p + k), mm, _CMP_EQ_OQ));
        if (mask) return k + __builtin_ctz(static_cast<unsigned>(mask));
    }
    return first_index_of(p, k, n, m);
}

inline bool cpu_has_avx2() {
    static const bool yes = __builtin_cpu_supports("avx2");
    return yes;
}

inline int64_t first_argmax(const float* p, int64_t n, float* out_max, bool* out_bad) {
    return cpu_has_avx2() ? first_argmax_avx2(p, n, out_max, out_bad)
                          : first_argmax_sse2(p, n, out_max, out_bad);
}
#else
inline int64_t first_argmax(const float* p, int64_t n, float* out_max, bool* out_bad) {
    return first_argmax_scalar(p, n, out_max, out_bad);
}
#endif

inline float sign_of_difference(float a, float b) {
    return static_cast<float>((a > b) - (a < b));
}

// DARK step for one map with integer argmax (x, y), 2 <= x <= W-3, 2 <= y <= H-3, and maximum
// `peak` (> 0). Returns false when the rules say "do not refine"; otherwise writes the clipped
// Taylor step into (sx, sy). `g` is the 1-D blur kernel of radius r; KR = r when it is known at
// compile time (the default kernel 11: the loops unroll), or 0 (r read from g).
template <int KR>
bool dark_step(const float* h, int H, int W, int x, int y, float peak, const DarkRule& rule,
               double* sx, double* sy) {
    const std::vector<double>& g = rule.g;
    const int r = KR > 0 ? KR : static_cast<int>(g.size()) / 2;
    const int R = r + 2, S = 2 * R + 1;  // the window: rows y-R..y+R, columns x-R..x+R
    // 1.-2. Horizontal blur of every window row at the 5 columns x-2..x+2. Inside the map the
    //    rows are read in place (five independent sums: the CPU overlaps them). At a border the
    //    zero padding is never materialised: rows outside the map blur to 0, and the terms of a
    //    column outside the map (g * 0) are skipped, which leaves each sum bit-identical. So the
    //    memory is S * 5 doubles whatever the kernel, never an S x S copy.
    thread_local std::vector<double> hblur;
    hblur.resize(static_cast<size_t>(S) * 5);
    const double* gk = g.data();
    const bool inside = x - R >= 0 && x + R < W && y - R >= 0 && y + R < H;
    for (int row = 0; row < S; ++row) {
        double* o = hblur.data() + static_cast<size_t>(row) * 5;
        const int yy = y - R + row;
        if (yy < 0 || yy >= H) {
            o[0] = o[1] = o[2] = o[3] = o[4] = 0.0;
            continue;
        }
        const float* line = h + static_cast<int64_t>(yy) * W;
        if (inside) {
            const float* w = line + (x - R);
            double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0, a4 = 0.0;
            for (int t = 0; t <= 2 * r; ++t) {
                const double gt = gk[t];
                a0 += gt * w[t];
                a1 += gt * w[t + 1];
                a2 += gt * w[t + 2];
                a3 += gt * w[t + 3];
                a4 += gt * w[t + 4];
            }
            o[0] = a0; o[1] = a1; o[2] = a2; o[3] = a3; o[4] = a4;
            continue;
        }
        for (int c = 0; c < 5; ++c) {  // column x - R + t + c must lie in [0, W - 1]
            const int t0 = std::max(0, R - x - c), t1 = std::min(2 * r, W - 1 - x + R - c);
            double a = 0.0;
            for (int t = t0; t <= t1; ++t) a += gk[t] * line[x - R + t + c];
            o[c] = a;
        }
    }
    // 3. Vertical blur: the blurred 5x5 patch P[2 + dy][2 + dx] around the argmax.
    double P[5][5];
    double pmax = -HUGE_VAL;
    for (int i = 0; i < 5; ++i) {
        double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0, a4 = 0.0;
        for (int t = 0; t <= 2 * r; ++t) {
            const double gt = gk[t];
            const double* o = hblur.data() + static_cast<size_t>(i + t) * 5;
            a0 += gt * o[0];
            a1 += gt * o[1];
            a2 += gt * o[2];
            a3 += gt * o[3];
            a4 += gt * o[4];
        }
        P[i][0] = a0; P[i][1] = a1; P[i][2] = a2; P[i][3] = a3; P[i][4] = a4;
        pmax = std::max(pmax, std::max(std::max(a0, a1), std::max(std::max(a2, a3), a4)));
    }
    if (!(pmax > 0.0)) return false;  // nothing positive to take the log of: keep the argmax
    // 4. Rescale to the original maximum (by the patch's largest blurred value), floor at 1e-10.
    //    Differences of logs are logs of ratios: 5 logarithms instead of 13.
    const double scale = static_cast<double>(peak) / pmax;
    auto v = [&](int dy, int dx) { return std::max(scale * P[2 + dy][2 + dx], rule.log_floor); };
    const double c = v(0, 0);
    const double dx = 0.5 * std::log(v(0, 1) / v(0, -1));
    const double dy = 0.5 * std::log(v(1, 0) / v(-1, 0));
    const double dxx = 0.25 * std::log((v(0, 2) / c) * (v(0, -2) / c));
    const double dyy = 0.25 * std::log((v(2, 0) / c) * (v(-2, 0) / c));
    const double dxy = 0.25 * std::log((v(1, 1) / v(-1, 1)) * (v(-1, -1) / v(1, -1)));
    // 5. Newton step -H^{-1} g, only where the quadratic model has a maximum.
    return newton_step(dx, dy, dxx, dyy, dxy, rule.max_step, sx, sy);
}

void decode_one(const float* h, int H, int W, Method method, const DarkRule& rule,
                float* coord, float* score, bool* bad) {
    float peak;
    const int64_t idx = first_argmax(h, static_cast<int64_t>(H) * W, &peak, bad);
    *score = peak;
    if (*bad || !(peak > 0.0f)) {
        coord[0] = -1.0f;
        coord[1] = -1.0f;
        return;
    }
    const int y = static_cast<int>(idx / W), x = static_cast<int>(idx % W);
    float fx = static_cast<float>(x), fy = static_cast<float>(y);
    if (method == QUARTER) {
        const float* row = h + static_cast<int64_t>(y) * W;
        if (x >= 2 && x <= W - 2 && y >= 2 && y <= H - 2) {  // HRNet: 1 < px < W-1 and 1 < py < H-1
            fx += 0.25f * sign_of_difference(row[x + 1], row[x - 1]);
            fy += 0.25f * sign_of_difference(row[x + W], row[x - W]);
        }
    } else if (method == DARK) {
        double sx, sy;
        const bool interior = x >= 2 && x <= W - 3 && y >= 2 && y <= H - 3;
        const bool refined =
            interior && (rule.g.size() == 11 ? dark_step<5>(h, H, W, x, y, peak, rule, &sx, &sy)
                                             : dark_step<0>(h, H, W, x, y, peak, rule, &sx, &sy));
        if (refined) {
            fx = static_cast<float>(x + sx);
            fy = static_cast<float>(y + sy);
        }
    }
    coord[0] = fx;
    coord[1] = fy;
}

// The number of threads to use: num_threads <= 0 means OpenMP's default (OMP_NUM_THREADS or all
// cores); either way at most the processors available, so that no thread count can make libgomp
// fail to create its threads and exit the process.
int clamp_threads(int num_threads) {
#ifdef _OPENMP
    const int procs = std::max(1, omp_get_num_procs());
    if (num_threads <= 0) num_threads = omp_get_max_threads();
    return std::max(1, std::min(num_threads, procs));
#else
    (void)num_threads;
    return 1;
#endif
}

// The widest kernel for H x W maps (course_lib.dark.max_kernel): 2 * max(H, W, 5) + 1.
int64_t max_kernel(int64_t H, int64_t W) { return 2 * std::max<int64_t>({H, W, 5}) + 1; }

py::tuple decode(py::array_t<float, py::array::c_style | py::array::forcecast> heatmaps,
                 const std::string& method, int blur_kernel, int num_threads,
                 py::object kernel, double log_floor, double max_step) {
    if (heatmaps.ndim() != 4)
        throw py::value_error("heatmaps: expected a 4-D array [N, K, H, W], got " +
                              std::to_string(heatmaps.ndim()) + " dimensions");
    Method m;
    if (method == "argmax") m = ARGMAX;
    else if (method == "quarter") m = QUARTER;
    else if (method == "dark") m = DARK;
    else throw py::value_error("method: expected 'argmax', 'quarter' or 'dark', got '" + method + "'");
    if (blur_kernel < 1 || blur_kernel % 2 == 0)
        throw py::value_error("blur_kernel: expected a positive odd int, got " + std::to_string(blur_kernel));
    const int64_t N = heatmaps.shape(0), K = heatmaps.shape(1);
    const int64_t Hl = heatmaps.shape(2), Wl = heatmaps.shape(3);
    if (N * K > 0 && (Hl < 1 || Wl < 1))
        throw py::value_error("heatmaps: expected H >= 1 and W >= 1, got H=" + std::to_string(Hl) +
                              ", W=" + std::to_string(Wl));
    if (!(log_floor > 0.0) || !(max_step > 0.0))
        throw py::value_error("log_floor, max_step: expected positive numbers");
    if (m == DARK && N * K > 0 && blur_kernel > max_kernel(Hl, Wl))
        throw py::value_error("blur_kernel: expected at most " + std::to_string(max_kernel(Hl, Wl)) +
                              " (2 * max(H, W, 5) + 1 for maps of " + std::to_string(Hl) + " x " +
                              std::to_string(Wl) + ": a wider kernel blurs the whole map flat), got " +
                              std::to_string(blur_kernel));
    DarkRule rule;
    rule.log_floor = log_floor;
    rule.max_step = max_step;
    std::vector<double>& g = rule.g;
    if (m != DARK) {
        // argmax and quarter never blur: no kernel is built, whatever blur_kernel says
    } else if (kernel.is_none()) {
        g = opencv_gaussian_kernel(blur_kernel);
    } else {
        auto kv = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(kernel);
        if (!kv || kv.ndim() != 1 || kv.shape(0) != blur_kernel)
            throw py::value_error("kernel: expected a 1-D array of blur_kernel weights");
        g.assign(kv.data(), kv.data() + blur_kernel);
    }
    num_threads = clamp_threads(num_threads);

    py::array_t<float> coords({N, K, static_cast<int64_t>(2)});
    py::array_t<float> scores({N, K});
    const int64_t maps = N * K;
    if (maps == 0) return py::make_tuple(coords, scores);
    const int H = static_cast<int>(Hl), W = static_cast<int>(Wl);
    const float* src = heatmaps.data();
    float* out_c = coords.mutable_data();
    float* out_s = scores.mutable_data();
    int64_t first_bad = -1;
    std::exception_ptr failure = nullptr;  // the first exception of the parallel region
    {
        py::gil_scoped_release release;
        std::vector<unsigned char> bad(static_cast<size_t>(maps), 0);
        const int64_t plane = static_cast<int64_t>(H) * W;
        // No exception may leave an OpenMP region (the process would abort): each map's work
        // catches its own (std::bad_alloc of a window buffer, ...), the first one is kept and
        // rethrown after the region, where pybind11 turns it into a Python exception.
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(num_threads) if (num_threads > 1 && maps > 1)
#endif
        for (int64_t i = 0; i < maps; ++i) {
            try {
                bool b = false;
                decode_one(src + i * plane, H, W, m, rule, out_c + 2 * i, out_s + i, &b);
                bad[i] = b;
            } catch (...) {
#ifdef _OPENMP
#pragma omp critical(dark_decoder_failure)
#endif
                if (!failure) failure = std::current_exception();
            }
        }
        for (int64_t i = 0; i < maps; ++i)
            if (bad[i]) {
                first_bad = i;
                break;
            }
    }
    if (failure) std::rethrow_exception(failure);
    if (first_bad >= 0)
        throw py::value_error("heatmaps: contains NaN or inf (first in map n=" +
                              std::to_string(first_bad / K) + ", k=" + std::to_string(first_bad % K) +
                              "); expected finite values");
    return py::make_tuple(coords, scores);
}

}  // namespace

PYBIND11_MODULE(dark_decoder, m) {
    m.doc() = "Heatmap decoding (argmax, quarter, DARK) in C++; see course_lib.native.";
    m.def("decode", &decode, py::arg("heatmaps"), py::arg("method") = "dark",
          py::arg("blur_kernel") = 11, py::arg("num_threads") = 0, py::arg("kernel") = py::none(),
          py::arg("log_floor") = 1e-10, py::arg("max_step") = 1.0,
          "decode(heatmaps [N,K,H,W] float32, method, blur_kernel=11, num_threads=0 (all), "
          "kernel=None, log_floor=1e-10, max_step=1.0) -> (coords [N,K,2] float32 (x, y) "
          "heatmap px, scores [N,K] float32)");
    m.def(
        "gaussian_kernel",
        [](int ksize) {
            if (ksize < 1 || ksize % 2 == 0 || ksize > kMaxKernel)
                throw py::value_error("ksize: expected a positive odd int <= " +
                                      std::to_string(kMaxKernel) + ", got " + std::to_string(ksize));
            const std::vector<double> k = opencv_gaussian_kernel(ksize);
            py::array_t<double> out(static_cast<py::ssize_t>(k.size()));
            std::copy(k.begin(), k.end(), out.mutable_data());
            return out;
        },
        py::arg("ksize"),
          "The 1-D kernel of cv2.getGaussianKernel(ksize, 0) as this module computes it.");
#ifdef _OPENMP
    m.attr("openmp") = true;
#else
    m.attr("openmp") = false;
#endif
}

/*
<%
setup_pybind11(cfg)
import sys
cfg['extra_compile_args'] += ['-std=c++17', '-O3', '-g0']
if sys.platform.startswith('linux'):
    cfg['extra_compile_args'] += ['-fopenmp']
    cfg['extra_link_args'] += ['-fopenmp']
%>
*/
