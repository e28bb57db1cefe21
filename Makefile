# netsight build and test entry points. `sudo make test` is the whole suite.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/netsight/netsight/internal/buildinfo.Version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build test vet lint unit lab fuzz bench generate clean dist image

all: build

# A static binary: no cgo, so it runs on any Linux host.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/netsight ./cmd/netsight

# The whole test suite: vet and lint, unit tests with the race detector, then
# every test (privileged lab tests included) one package at a time. Run as
# root: lab tests build network namespaces. With CI=true a privileged test
# that cannot run fails instead of skipping.
test: vet lint unit lab

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
