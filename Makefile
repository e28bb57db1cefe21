# netsight build and test entry points. `sudo make test` is the whole suite.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/netsight/netsight/internal/buildinfo.Version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build test vet lint unit lab fuzz fuzz-short bench generate clean dist image

all: build

# A static binary: no cgo, so it runs on any Linux host.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/netsight ./cmd/netsight

# The whole test suite: vet and lint, unit tests with the race detector, a
# short fuzzing pass, then every test (privileged lab tests included) one package at a time. Run as
# root: lab tests build network namespaces. With CI=true a privileged test
# that cannot run fails instead of skipping.
test: vet lint unit fuzz-short lab

# deploy/ is its own module (Helm, Grafana SDK, nfpm stay out of the
# agent's go.mod); every target below covers it too.
DEPLOY := cd deploy &&

vet:
	$(GO) vet ./...
	$(DEPLOY) $(GO) vet ./...

lint:
	$(GO) run $(STATICCHECK) ./...
	$(DEPLOY) $(GO) run $(STATICCHECK) ./...

unit:
	$(GO) test -race -short -count=1 -timeout 10m ./...
	$(DEPLOY) $(GO) test -short -count=1 -timeout 10m ./...

lab:
	$(GO) test -count=1 -p 1 -timeout 25m ./...
	$(DEPLOY) $(GO) test -count=1 -p 1 -timeout 10m ./...

# Fuzzing: every Fuzz target (found by grep, so no test binary is built just
# to list them) runs for FUZZTIME, one after the other; a crasher stops the
# run and stays in the package's testdata/fuzz/ as a regression seed.
# `make fuzz FUZZTIME=30m` is the long pass. `make fuzz-short` (part of
# `make test`) runs each target for 2s, except in FUZZ_SHORT_SKIP: packages
# whose fuzz-instrumented build pulls in the whole Prometheus dependency
# tree (over 10 minutes on a 2-core machine); their seeds and corpus still
# run in every `go test`. A target that fails only with the fuzzer's own
# "context deadline exceeded" at the end of FUZZTIME, writing no failing
# input (a flake of `go test -fuzz` itself, seen here with 2s runs), is run
# once more; any other failure stops the run.
FUZZTIME ?= 30s
FUZZFLAGS ?=
FUZZSKIP ?=
FUZZ_SHORT_SKIP := ./cmd/netsight ./store
fuzz:
	@for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  case " $(FUZZSKIP) " in *" $$dir "*) echo "== $$dir skipped"; continue;; esac; \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | cut -c6-); do \
	    echo "== $$dir $$f"; \
	    out=$$(mktemp); \
	    if $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) $$dir >$$out 2>&1; then cat $$out; \
	    else cat $$out; \
	      if grep -q 'context deadline exceeded' $$out && ! grep -q 'Failing input written' $$out; then \
	        echo "== $$dir $$f: the fuzzer stopped on its own deadline with no failing input; running it again"; \
	        $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) $$dir || { rm -f $$out; exit 1; }; \
	      else rm -f $$out; exit 1; fi; \
	    fi; \
	    rm -f $$out; \
	  done; \
	done

fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=2s FUZZSKIP="$(FUZZ_SHORT_SKIP)"

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

generate:
	$(GO) generate ./...

# Release artifacts in dist/: static binaries for linux/amd64 and arm64,
# .deb and .rpm packages (nfpm, deploy/package/nfpm.yaml) and SHA256SUMS.
dist:
	rm -rf dist && mkdir -p dist
	for arch in amd64 arm64; do \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
	    -o dist/netsight-linux-$$arch ./cmd/netsight || exit 1; \
	done
	$(DEPLOY) $(GO) run ./dist/cmd/nspkg -config package/nfpm.yaml -dist ../dist -version $(VERSION) -arch amd64,arm64
	cd dist && sha256sum netsight-linux-* *.deb *.rpm > SHA256SUMS

# The FROM scratch container image of bin/netsight (podman; Debian's crun
# cannot run containers on hybrid-cgroup hosts, so runc).
image: build
	podman --runtime runc build -f deploy/container/Dockerfile -t netsight:$(VERSION) bin/

clean:
	rm -rf bin dist
