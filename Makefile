# netsight build and test entry points. `sudo make test` is the whole suite.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/netsight/netsight/internal/buildinfo.Version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build test vet lint unit lab fuzz bench generate clean

all: build

# A static binary: no cgo, so it runs on any Linux host.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/netsight ./cmd/netsight

# The whole test suite: vet and lint, unit tests with the race detector, then
# every test (privileged lab tests included) one package at a time. Run as
# root: lab tests build network namespaces. With CI=true a privileged test
# that cannot run fails instead of skipping.
test: vet lint unit lab

vet:
	$(GO) vet ./...

lint:
	$(GO) run $(STATICCHECK) ./...

unit:
	$(GO) test -race -short -count=1 -timeout 10m ./...

lab:
	$(GO) test -count=1 -p 1 -timeout 25m ./...

# Short fuzzing pass over every Fuzz target (FUZZTIME each).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

generate:
	$(GO) generate ./...

clean:
	rm -rf bin
