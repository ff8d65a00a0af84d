/* Put first on the include path by `make check-pure`: a sans-I/O core that
 * includes <uv.h>, even through another header, fails to compile. */
#error "a pure core includes <uv.h>"
