# Convenience aliases for ./dev (the README's two commands).
ARGS ?=
.PHONY: run test bench
run:
	./dev run $(ARGS)
test:
	./dev test $(ARGS)
bench:
	./dev bench
