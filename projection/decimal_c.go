package projection

/*
#include <stdlib.h>
#include <string.h>

// The few SQLite API entry points used here, declared by hand: they are
// defined by the SQLite that mattn/go-sqlite3 compiles into the binary.
typedef struct sqlite3 sqlite3;
typedef struct sqlite3_context sqlite3_context;
typedef struct sqlite3_value sqlite3_value;
typedef struct sqlite3_api_routines sqlite3_api_routines;
extern int sqlite3_auto_extension(void (*)(void));
extern int sqlite3_create_function_v2(sqlite3*, const char*, int, int, void*,
	void (*)(sqlite3_context*, int, sqlite3_value**),
	void (*)(sqlite3_context*, int, sqlite3_value**),
	void (*)(sqlite3_context*), void (*)(void*));
extern const unsigned char *sqlite3_value_text(sqlite3_value*);
extern int sqlite3_value_type(sqlite3_value*);
extern void sqlite3_result_text(sqlite3_context*, const char*, int, void (*)(void*));
extern void sqlite3_result_error(sqlite3_context*, const char*, int);
extern void sqlite3_result_error_nomem(sqlite3_context*);

#define DEC_NULL 5
#define DEC_UTF8 1
#define DEC_DETERMINISTIC 0x000000800
#define DEC_TRANSIENT ((void (*)(void*))-1)

// A decimal is sign * digits * 10^-scale, digits most significant first.
typedef struct {
	int neg;
	int n;          // number of digits
	int scale;      // digits after the point (may be negative)
	unsigned char *d;
} dec;

// dec_parse reads [+-]digits[.digits][(e|E)[+-]digits]. It returns 0 on
// success, -1 on bad input, -2 when out of memory.
static int dec_parse(const char *s, dec *x) {
	memset(x, 0, sizeof *x);
	if (s == 0) { s = "0"; }
	while (*s == ' ') s++;
	if (*s == '+' || *s == '-') { x->neg = (*s == '-'); s++; }
	size_t len = strlen(s);
	x->d = malloc(len + 1);
	if (!x->d) return -2;
	int seenDigit = 0, seenPoint = 0;
	for (; *s && *s != 'e' && *s != 'E'; s++) {
		if (*s >= '0' && *s <= '9') {
			x->d[x->n++] = (unsigned char)(*s - '0');
			if (seenPoint) x->scale++;
			seenDigit = 1;
		} else if (*s == '.' && !seenPoint) {
			seenPoint = 1;
		} else {
			return -1;
		}
	}
	if (!seenDigit) return -1;
	if (*s == 'e' || *s == 'E') {
		s++;
		int eneg = 0, e = 0, ed = 0;
		if (*s == '+' || *s == '-') { eneg = (*s == '-'); s++; }
		for (; *s >= '0' && *s <= '9'; s++) { e = e * 10 + (*s - '0'); ed = 1; if (e > 100000) return -1; }
		if (!ed || *s) return -1;
		x->scale += eneg ? e : -e;
	}
	return 0;
}

// dec_format writes x normalised (no leading zeros, no trailing zeros after
// the point, "0" for zero), as shopspring/decimal's String() does.
static char *dec_format(const unsigned char *d, int n, int scale, int neg) {
	// Drop trailing zeros of the fraction, and leading zeros.
	while (scale > 0 && n > 0 && d[n - 1] == 0) { n--; scale--; }
	int start = 0;
	while (start < n - 1 && d[start] == 0 && n - start > scale + 1) start++;
	int m = n - start;
	int allzero = 1;
	for (int i = start; i < n; i++) if (d[i]) { allzero = 0; break; }
	if (m == 0 || allzero) { char *z = malloc(2); if (z) { z[0] = '0'; z[1] = 0; } return z; }
	// With a negative scale, append zeros; with scale >= m, prefix "0.".
	int zerosAfter = scale < 0 ? -scale : 0;
	int size = m + zerosAfter + (scale > 0 ? 2 : 0) + (scale > m ? scale - m : 0) + 2;
	char *out = malloc(size + 1);
	if (!out) return 0;
	char *p = out;
	if (neg) *p++ = '-';
	if (scale <= 0) {
		for (int i = start; i < n; i++) *p++ = (char)('0' + d[i]);
		for (int i = 0; i < zerosAfter; i++) *p++ = '0';
	} else if (scale >= m) {
		*p++ = '0'; *p++ = '.';
		for (int i = 0; i < scale - m; i++) *p++ = '0';
		for (int i = start; i < n; i++) *p++ = (char)('0' + d[i]);
	} else {
		for (int i = start; i < n; i++) {
			if (i - start == m - scale) *p++ = '.';
			*p++ = (char)('0' + d[i]);
		}
	}
	*p = 0;
	return out;
}

// cmp_mag compares |a| and |b| aligned to scale s (digit arrays of equal length).
static int cmp_mag(const unsigned char *a, const unsigned char *b, int n) {
	for (int i = 0; i < n; i++) { if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1; }
	return 0;
}

// align returns x's digits padded to `intd` integer digits and `frac` fraction digits.
static unsigned char *align(const dec *x, int intd, int frac) {
	unsigned char *r = calloc((size_t)(intd + frac) + 1, 1);
	if (!r) return 0;
	int xint = x->n - x->scale; // may exceed n when scale < 0
	for (int i = 0; i < x->n; i++) {
		int pos = intd - xint + i; // position of digit i
		if (pos >= 0 && pos < intd + frac) r[pos] = x->d[i];
	}
	return r;
}

static char *dec_addsub(const dec *a, const dec *b, int subtract) {
	int bneg = subtract ? !b->neg : b->neg;
	int aint = a->n - a->scale, bint = b->n - b->scale;
	int intd = (aint > bint ? aint : bint) + 1;
	if (intd < 1) intd = 1;
	int frac = a->scale > b->scale ? a->scale : b->scale;
	if (frac < 0) frac = 0;
	int n = intd + frac;
	unsigned char *x = align(a, intd, frac), *y = align(b, intd, frac);
	unsigned char *r = calloc((size_t)n + 1, 1);
	char *out = 0;
	if (!x || !y || !r) goto done;
	int neg;
	if (a->neg == bneg) {
		int carry = 0;
		for (int i = n - 1; i >= 0; i--) { int s = x[i] + y[i] + carry; r[i] = (unsigned char)(s % 10); carry = s / 10; }
		neg = a->neg;
	} else {
		const unsigned char *big = x, *small = y;
		neg = a->neg;
		if (cmp_mag(x, y, n) < 0) { big = y; small = x; neg = bneg; }
		int borrow = 0;
		for (int i = n - 1; i >= 0; i--) { int s = big[i] - small[i] - borrow; borrow = s < 0; if (s < 0) s += 10; r[i] = (unsigned char)s; }
	}
	out = dec_format(r, n, frac, neg);
done:
	free(x); free(y); free(r);
	return out;
}

static char *dec_mulp(const dec *a, const dec *b) {
	int n = a->n + b->n;
	int *acc = calloc((size_t)n + 1, sizeof(int));
	unsigned char *r = calloc((size_t)n + 1, 1);
	char *out = 0;
	if (!acc || !r) goto done;
	for (int i = a->n - 1; i >= 0; i--)
		for (int j = b->n - 1; j >= 0; j--)
			acc[i + j + 1] += a->d[i] * b->d[j];
	for (int k = n - 1; k > 0; k--) { acc[k - 1] += acc[k] / 10; acc[k] %= 10; }
	for (int k = 0; k < n; k++) r[k] = (unsigned char)acc[k];
	out = dec_format(r, n, a->scale + b->scale, a->neg != b->neg);
done:
	free(acc); free(r);
	return out;
}

static void dec_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv, int op) {
	dec a, b;
	const char *sa = sqlite3_value_type(argv[0]) == DEC_NULL ? "0" : (const char*)sqlite3_value_text(argv[0]);
	const char *sb = sqlite3_value_type(argv[1]) == DEC_NULL ? "0" : (const char*)sqlite3_value_text(argv[1]);
	int ea = dec_parse(sa, &a), eb = dec_parse(sb, &b);
	char *out = 0;
	if (ea == -2 || eb == -2) { sqlite3_result_error_nomem(ctx); goto done; }
	if (ea || eb) { sqlite3_result_error(ctx, "dec: argument is not a decimal number", -1); goto done; }
	out = op == 2 ? dec_mulp(&a, &b) : dec_addsub(&a, &b, op == 1);
	if (!out) { sqlite3_result_error_nomem(ctx); goto done; }
	sqlite3_result_text(ctx, out, -1, DEC_TRANSIENT);
done:
	free(a.d); free(b.d); free(out);
}

static void dec_add_fn(sqlite3_context *c, int n, sqlite3_value **v) { dec_fn(c, n, v, 0); }
static void dec_sub_fn(sqlite3_context *c, int n, sqlite3_value **v) { dec_fn(c, n, v, 1); }
static void dec_mul_fn(sqlite3_context *c, int n, sqlite3_value **v) { dec_fn(c, n, v, 2); }

static int dec_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
	int flags = DEC_UTF8 | DEC_DETERMINISTIC;
	int rc = sqlite3_create_function_v2(db, "dec_add", 2, flags, 0, dec_add_fn, 0, 0, 0);
	if (rc == 0) rc = sqlite3_create_function_v2(db, "dec_sub", 2, flags, 0, dec_sub_fn, 0, 0, 0);
	if (rc == 0) rc = sqlite3_create_function_v2(db, "dec_mul", 2, flags, 0, dec_mul_fn, 0, 0, 0);
	return rc;
}

static int register_decimal(void) { return sqlite3_auto_extension((void (*)(void))dec_init); }
*/
import "C"

import "fmt"

// The exact decimal functions are C, registered with SQLite for every
// connection: SQLite calls them without leaving C. As Go functions (through
// mattn/go-sqlite3's RegisterFunc) each call crossed into Go and through
// reflection, about 2 µs, which dominated declarative projections.
func init() {
	if rc := C.register_decimal(); rc != 0 {
		panic(fmt.Sprintf("projection: cannot register the decimal SQL functions: %d", rc))
	}
}
