# Convenience targets; each is one of the scripts.
.PHONY: build test demo install package
build:
	swift build -c release
test:
	./scripts/test
demo:
	./scripts/demo
install:
	./scripts/install-systemd
package:
	./scripts/package
