/* Branch-free evaluation of a packed LightGBM forest (see models/forest.py for the layout).
 *
 * Rows are processed in blocks of BLOCK. For each row the features are first quantised to integer
 * codes (one per "virtual feature", see forest.py). Forests of trees with at most 32 leaves are then
 * evaluated with leaf-mask tables (predict_masks); others are walked level by level without
 * branches (walk_scalar): next = left[node] + !(go_left), leaves pointing to themselves, so a fixed
 * number of levels (the tree's depth) reaches every leaf; eight rows at a time (independent chains the
 * CPU overlaps).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 512
#define MAX_VF 64

typedef struct {
    int32_t n_features;      /* real input columns */
    int32_t n_vf;            /* virtual features (columns of the code matrix) */
    const int32_t *vf_src;   /* [n_vf] input column of each virtual feature */
    const int32_t *vf_kind;  /* [n_vf] 0 numeric, NaN -> zero code; 1 numeric, NaN -> left;
                                2 numeric, NaN -> right; 3 categorical (code = category, NaN -> 32) */
    const int32_t *thr_start;/* [n_features + 1] slice of thresholds of each input column */
    const double *thresholds;/* sorted thresholds per input column */
    int32_t n_trees;
    const int32_t *tree_start;  /* [n_trees + 1] slice of nodes of each tree */
    const int32_t *tree_depth;  /* [n_trees] levels to walk */
    const int32_t *node_word;   /* left child (bits 0-15, tree-local) | virtual feature << 16 |
                                   categorical << 24 */
    const int32_t *node_thr;    /* numeric: go left iff code <= thr; categorical: bit mask */
    const double *node_value;   /* leaf values (0 at inner nodes) */
    int32_t sigmoid;            /* 1: output 1 / (1 + exp(-scale * s)) */
    double sigmoid_scale;
    /* leaf-mask tables, only when every tree has at most 32 leaves (else masks is NULL) */
    const uint32_t *masks;      /* rows of n_trees_pad masks: row mask_start[k] + i is virtual
                                   feature k at table index i */
    const int64_t *mask_start;  /* [n_vf] first row of each virtual feature */
    const int32_t *mask_rows;   /* [n_vf] rows of each virtual feature */
    const double *leaf_value;   /* [n_trees_pad * 32] leaves of each tree, left to right */
    int32_t n_trees_pad;        /* n_trees rounded up to a multiple of 16 */
} forest_t;

/* number of thresholds < v (v not NaN): v <= t[k] iff code <= k. Two short branch-free counts: the
 * full blocks of 16 whose last threshold is below v, then the thresholds below v in the next block.
 * (Measured faster here than a binary search, a chain of dependent loads, and than one long count.) */
static inline int32_t count_below(const double *t, int32_t m, double v) {
    int32_t blocks = 0;
    for (int32_t j = 15; j < m; j += 16) blocks += t[j] < v;
    int32_t lo = blocks * 16, hi = lo + 16 < m ? lo + 16 : m, n = lo;
    for (int32_t i = lo; i < hi; i++) n += t[i] < v;
    return n;
}

static void quantise(const forest_t *f, const double *x, long m, int32_t *codes) {
    int32_t nf = f->n_features, nv = f->n_vf;
    int32_t num[MAX_VF];  /* codes of the real features; MAX_VF >= n_features (checked in forest.py) */
    for (long r = 0; r < m; r++) {
        const double *xr = x + r * nf;
        for (int32_t j = 0; j < nf; j++) {
            int32_t a = f->thr_start[j], b = f->thr_start[j + 1];
            if (r > 0 && xr[j] == xr[j - nf]) continue;  /* same value as the row before: same code */
            num[j] = (b > a && !isnan(xr[j])) ? count_below(f->thresholds + a, b - a, xr[j]) : 0;
        }
        int32_t *cr = codes + r * nv;
        for (int32_t k = 0; k < nv; k++) {
            int32_t j = f->vf_src[k];
            double v = xr[j];
            switch (f->vf_kind[k]) {
            case 0: cr[k] = isnan(v) ? count_below(f->thresholds + f->thr_start[j],
                                                   f->thr_start[j + 1] - f->thr_start[j], 0.0)
                                     : num[j]; break;
            case 1: cr[k] = isnan(v) ? -1 : num[j]; break;
            case 2: cr[k] = isnan(v) ? INT32_MAX : num[j]; break;
            default: cr[k] = (!isnan(v) && v > -1.0 && v < 32.0) ? (int32_t)v : 32; break;
            }
        }
    }
}

static inline int32_t step(const forest_t *f, int32_t base, int32_t node, const int32_t *cr) {
    int32_t w = f->node_word[base + node];
    int32_t t = f->node_thr[base + node];
    int32_t c = cr[(w >> 16) & 0xFF];
    int32_t left = (w >> 24) ? (int32_t)(((uint32_t)t >> (c & 31)) & (c < 32)) : (c <= t);
    return (w & 0xFFFF) + !left;
}

static void walk_scalar(const forest_t *f, int32_t tree, const int32_t *codes, long r0, long m,
                        double *s) {
    int32_t base = f->tree_start[tree], depth = f->tree_depth[tree], nv = f->n_vf;
    long r = r0;
    for (; r + 8 <= m; r += 8) {
        int32_t n[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int32_t d = 0; d < depth; d++)
            for (int i = 0; i < 8; i++) n[i] = step(f, base, n[i], codes + (r + i) * nv);
        for (int i = 0; i < 8; i++) s[r + i] += f->node_value[base + n[i]];
    }
    for (; r < m; r++) {
        int32_t n = 0;
        for (int32_t d = 0; d < depth; d++) n = step(f, base, n, codes + r * nv);
        s[r] += f->node_value[base + n];
    }
}

/* Leaf-mask evaluation (the QuickScorer idea on quantised codes): a tree's exit leaf is the leftmost
 * leaf not excluded by a node whose test fails. For each virtual feature and code, the table row holds,
 * per tree, the AND of the "not in my left subtree" masks of every node that code sends right, so the
 * exit leaves of all trees are the lowest set bits of the AND of one table row per virtual feature.
 *
 * Neighbouring rows of a field share most codes, so the ANDs are taken in order of how often a virtual
 * feature's code changes within the block (fewest first) and the partial ANDs are kept: a row starts
 * from the partial AND of the longest prefix of codes it shares with the row before, and a row whose
 * codes all equal the previous row's reuses its score. */
static void predict_masks(const forest_t *f, const int32_t *codes, long m, double *s, uint32_t *partial) {
    int32_t nv = f->n_vf, nt = f->n_trees_pad;
    int32_t order[MAX_VF], changes[MAX_VF];
    for (int32_t k = 0; k < nv; k++) {
        changes[k] = 0;
        for (long r = 1; r < m; r++) changes[k] += codes[r * nv + k] != codes[(r - 1) * nv + k];
        int32_t i = k;  /* insertion sort by change count */
        while (i > 0 && changes[order[i - 1]] > changes[k]) { order[i] = order[i - 1]; i--; }
        order[i] = k;
    }
    /* keeping partial ANDs costs stores; it pays only when rows share leading codes */
    int keep = m > 1 && changes[order[0]] < m / 2;
    uint32_t *acc = partial + (int64_t)nv * nt;
    for (int32_t t = 0; t < nt; t++) partial[t] = ~0u;
    for (long r = 0; r < m; r++) {
        const int32_t *cr = codes + r * nv;
        int32_t p = 0;
        if (r > 0)
            while (p < nv && cr[order[p]] == cr[order[p] - nv]) p++;
        if (r > 0 && p == nv) { s[r] = s[r - 1]; continue; }
        if (!keep) {
            p = 0;
            for (int32_t t = 0; t < nt; t++) acc[t] = ~0u;
        }
        for (; p < nv; p++) {
            int32_t k = order[p], c = cr[k], last = f->mask_rows[k] - 1;
            int32_t i = f->vf_kind[k] == 3 ? c : (c == INT32_MAX ? last : c + 1);
            const uint32_t *row = f->masks + (f->mask_start[k] + i) * (int64_t)nt;
            const uint32_t *prev = keep ? partial + (int64_t)p * nt : acc;
            uint32_t *next = keep ? partial + (int64_t)(p + 1) * nt : acc;
            for (int32_t t = 0; t < nt; t++) next[t] = prev[t] & row[t];
        }
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        const double *v = f->leaf_value;
        for (int32_t t = 0; t < nt; t += 4) {
            s0 += v[(t + 0) * 32 + __builtin_ctz(acc[t + 0])];
            s1 += v[(t + 1) * 32 + __builtin_ctz(acc[t + 1])];
            s2 += v[(t + 2) * 32 + __builtin_ctz(acc[t + 2])];
            s3 += v[(t + 3) * 32 + __builtin_ctz(acc[t + 3])];
        }
        s[r] = (s0 + s1) + (s2 + s3);
    }
}

/* Raw scores (sum of leaf values) or, with sigmoid set, the objective's output for n rows of x. */
int forest_predict(const forest_t *f, const double *x, long n, double *out) {
    int32_t codes[BLOCK * MAX_VF];
    double s[BLOCK];
    uint32_t *partial = NULL;
    if (f->masks) {
        partial = aligned_alloc(64, sizeof(uint32_t) * (size_t)(f->n_vf + 1) * (size_t)f->n_trees_pad);
        if (!partial) return -1;
    }
    for (long b = 0; b < n; b += BLOCK) {
        long m = n - b < BLOCK ? n - b : BLOCK;
        quantise(f, x + b * f->n_features, m, codes);
        if (f->masks) {
            predict_masks(f, codes, m, s, partial);
        } else {
            memset(s, 0, sizeof s);
            for (int32_t t = 0; t < f->n_trees; t++) walk_scalar(f, t, codes, 0, m, s);
        }
        for (long r = 0; r < m; r++)
            out[b + r] = f->sigmoid ? 1.0 / (1.0 + exp(-f->sigmoid_scale * s[r])) : s[r];
    }
    free(partial);
    return 0;
}

