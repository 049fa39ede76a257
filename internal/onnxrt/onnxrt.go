// Package onnxrt runs ONNX models on ONNX Runtime's CPU library without cgo.
//
// It loads libonnxruntime at run time with purego and calls the handful of
// functions of ONNX Runtime's C API (the OrtApi function table) that running a
// float32 model needs. No cgo keeps cross-compiling simple; loading the
// library at run time keeps it optional: a binary built with this package
// starts and runs without the library, and only the engine that needs it
// fails, with a clear error. Importing purego makes the binary dynamically
// linked against libc, so the static Lambda builds leave this package out
// (build tag nopaddle in cmd/tally).
package onnxrt

import (
	"debug/elf"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Errors callers tell apart with errors.Is.
var (
	// ErrLibrary marks a library that is missing, of the wrong
	// architecture, or not ONNX Runtime.
	ErrLibrary = errors.New("onnxrt: cannot load ONNX Runtime")
	// ErrModel marks a model file ONNX Runtime refused (missing, corrupt,
	// or not the shape the caller expects).
	ErrModel = errors.New("onnxrt: cannot load model")
	// ErrRun marks a failed inference.
	ErrRun = errors.New("onnxrt: run failed")
)

// apiVersion is the OrtApi version requested. Every function used here exists
// since ONNX Runtime 1.14 (API 14); asking for that rather than the newest
// lets older libraries work, and newer ones serve old versions by design.
const apiVersion = 14

// Indices into the OrtApi function table (onnxruntime_c_api.h, struct
// OrtApi). The table only ever grows at the end, so these never move.
const (
	fnGetErrorMessage                = 2
	fnCreateEnv                      = 3
	fnCreateSession                  = 7
	fnRun                            = 9
	fnCreateSessionOptions           = 10
	fnDisableMemPattern              = 17
	fnDisableCpuMemArena             = 19
	fnSetSessionGraphOptimization    = 23
	fnSetIntraOpNumThreads           = 24
	fnSetInterOpNumThreads           = 25
	fnSessionGetInputCount           = 30
	fnSessionGetOutputCount          = 31
	fnSessionGetInputName            = 36
	fnSessionGetOutputName           = 37
	fnCreateTensorWithDataAsOrtValue = 49
	fnGetTensorMutableData           = 51
	fnGetDimensionsCount             = 61
	fnGetDimensions                  = 62
	fnGetTensorTypeAndShape          = 65
	fnCreateCpuMemoryInfo            = 69
	fnAllocatorFree                  = 76
	fnGetAllocatorWithDefaultOptions = 78
	fnReleaseEnv                     = 92
	fnReleaseStatus                  = 93
	fnReleaseMemoryInfo              = 94
	fnReleaseSession                 = 95
	fnReleaseValue                   = 96
	fnReleaseTensorTypeAndShapeInfo  = 99
	fnReleaseSessionOptions          = 100
	tableSize                        = 101
)

// C API constants.
const (
	ortLoggingLevelError  = 3
	ortDeviceAllocator    = 0 // OrtAllocatorType OrtDeviceAllocator
	ortMemTypeDefault     = 0
	ortTensorFloat        = 1 // ONNXTensorElementDataType FLOAT
	ortEnableAll          = 99
	maxDimensions         = 16
	maxNameLength         = 256
	defaultThreadsPerCall = 1
)

// api holds the C functions, typed.
type api struct {
	getErrorMessage           func(status uintptr) string
	releaseStatus             func(status uintptr)
	createEnv                 func(level int32, logID string, out *uintptr) uintptr
	releaseEnv                func(env uintptr)
	createSessionOptions      func(out *uintptr) uintptr
	releaseSessionOptions     func(opts uintptr)
	setIntraOpNumThreads      func(opts uintptr, n int32) uintptr
	setInterOpNumThreads      func(opts uintptr, n int32) uintptr
	setGraphOptimization      func(opts uintptr, level int32) uintptr
	disableMemPattern         func(opts uintptr) uintptr
	disableCPUMemArena        func(opts uintptr) uintptr
	createSession             func(env uintptr, path string, opts uintptr, out *uintptr) uintptr
	releaseSession            func(s uintptr)
	sessionGetInputCount      func(s uintptr, out *uintptr) uintptr
	sessionGetOutputCount     func(s uintptr, out *uintptr) uintptr
	sessionGetInputName       func(s uintptr, i uintptr, alloc uintptr, out *unsafe.Pointer) uintptr
	sessionGetOutputName      func(s uintptr, i uintptr, alloc uintptr, out *unsafe.Pointer) uintptr
	getAllocatorWithDefault   func(out *uintptr) uintptr
	allocatorFree             func(alloc uintptr, p unsafe.Pointer) uintptr
	createCPUMemoryInfo       func(allocType, memType int32, out *uintptr) uintptr
	releaseMemoryInfo         func(info uintptr)
	createTensorWithData      func(info uintptr, data unsafe.Pointer, size uintptr, shape *int64, dims uintptr, typ int32, out *uintptr) uintptr
	releaseValue              func(v uintptr)
	run                       func(s, runOpts uintptr, inNames *unsafe.Pointer, in *uintptr, nIn uintptr, outNames *unsafe.Pointer, nOut uintptr, out *uintptr) uintptr
	getTensorMutableData      func(v uintptr, out *unsafe.Pointer) uintptr
	getTensorTypeAndShape     func(v uintptr, out *uintptr) uintptr
	releaseTensorTypeAndShape func(info uintptr)
	getDimensionsCount        func(info uintptr, out *uintptr) uintptr
	getDimensions             func(info uintptr, dims *int64, n uintptr) uintptr
}

// Runtime is a loaded ONNX Runtime library and its environment. One serves
// any number of sessions, concurrently.
type Runtime struct {
	path    string
	version string
	api     api
	env     uintptr
	alloc   uintptr // the default allocator; owned by the library
	memInfo uintptr // CPU memory, for input tensors over Go memory
}

var (
	loadMu sync.Mutex
	loaded = map[string]*Runtime{}
)

// Load opens the ONNX Runtime shared library at path (libonnxruntime.so.1)
// and creates its environment. A library cannot be unloaded safely, so Load
// keeps it for the life of the process and returns the same Runtime for the
// same path. Failures wrap ErrLibrary and say why (no such file, wrong
// architecture, not ONNX Runtime, too old).
func Load(path string) (*Runtime, error) {
	loadMu.Lock()
	defer loadMu.Unlock()
	if r, ok := loaded[path]; ok {
		return r, nil
	}
	r, err := load(path)
	if err != nil {
		return nil, err
	}
	loaded[path] = r
	return r, nil
}

func load(path string) (*Runtime, error) {
	if err := checkELF(path); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrLibrary, path, err)
	}
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrLibrary, path, err)
	}
	sym, err := purego.Dlsym(h, "OrtGetApiBase")
	if err != nil {
		return nil, fmt.Errorf("%w: %s has no OrtGetApiBase (not ONNX Runtime?): %v", ErrLibrary, path, err)
	}
	var getAPIBase func() unsafe.Pointer
	purego.RegisterFunc(&getAPIBase, sym)
	base := getAPIBase()
	if base == nil {
		return nil, fmt.Errorf("%w: %s: OrtGetApiBase returned nothing", ErrLibrary, path)
	}
	// struct OrtApiBase { const OrtApi* (*GetApi)(uint32_t); const char* (*GetVersionString)(void); }
	baseFns := (*[2]uintptr)(base)
	var getAPI func(version uint32) unsafe.Pointer
	var getVersion func() string
	purego.RegisterFunc(&getAPI, baseFns[0])
	purego.RegisterFunc(&getVersion, baseFns[1])
	r := &Runtime{path: path, version: getVersion()}
	table := getAPI(apiVersion)
	if table == nil {
		return nil, fmt.Errorf("%w: %s: ONNX Runtime %s does not serve API version %d (1.%d or newer needed)",
			ErrLibrary, path, r.version, apiVersion, apiVersion)
	}
	fns := (*[tableSize]uintptr)(table)
	a := &r.api
	reg := func(fptr any, i int) { purego.RegisterFunc(fptr, fns[i]) }
	reg(&a.getErrorMessage, fnGetErrorMessage)
	reg(&a.releaseStatus, fnReleaseStatus)
	reg(&a.createEnv, fnCreateEnv)
	reg(&a.releaseEnv, fnReleaseEnv)
	reg(&a.createSessionOptions, fnCreateSessionOptions)
	reg(&a.releaseSessionOptions, fnReleaseSessionOptions)
	reg(&a.setIntraOpNumThreads, fnSetIntraOpNumThreads)
	reg(&a.setInterOpNumThreads, fnSetInterOpNumThreads)
	reg(&a.setGraphOptimization, fnSetSessionGraphOptimization)
	reg(&a.disableMemPattern, fnDisableMemPattern)
	reg(&a.disableCPUMemArena, fnDisableCpuMemArena)
	reg(&a.createSession, fnCreateSession)
	reg(&a.releaseSession, fnReleaseSession)
	reg(&a.sessionGetInputCount, fnSessionGetInputCount)
	reg(&a.sessionGetOutputCount, fnSessionGetOutputCount)
	reg(&a.sessionGetInputName, fnSessionGetInputName)
	reg(&a.sessionGetOutputName, fnSessionGetOutputName)
	reg(&a.getAllocatorWithDefault, fnGetAllocatorWithDefaultOptions)
	reg(&a.allocatorFree, fnAllocatorFree)
	reg(&a.createCPUMemoryInfo, fnCreateCpuMemoryInfo)
	reg(&a.releaseMemoryInfo, fnReleaseMemoryInfo)
	reg(&a.createTensorWithData, fnCreateTensorWithDataAsOrtValue)
	reg(&a.releaseValue, fnReleaseValue)
	reg(&a.run, fnRun)
	reg(&a.getTensorMutableData, fnGetTensorMutableData)
	reg(&a.getTensorTypeAndShape, fnGetTensorTypeAndShape)
	reg(&a.releaseTensorTypeAndShape, fnReleaseTensorTypeAndShapeInfo)
	reg(&a.getDimensionsCount, fnGetDimensionsCount)
	reg(&a.getDimensions, fnGetDimensions)

	if err := r.status(a.createEnv(ortLoggingLevelError, "tally", &r.env)); err != nil {
		return nil, fmt.Errorf("%w: create environment: %v", ErrLibrary, err)
	}
	if err := r.status(a.getAllocatorWithDefault(&r.alloc)); err != nil {
		return nil, fmt.Errorf("%w: default allocator: %v", ErrLibrary, err)
	}
	if err := r.status(a.createCPUMemoryInfo(ortDeviceAllocator, ortMemTypeDefault, &r.memInfo)); err != nil {
		return nil, fmt.Errorf("%w: CPU memory info: %v", ErrLibrary, err)
	}
	return r, nil
}

// machines are the ELF machine of each architecture Go builds for here.
var machines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "386": elf.EM_386, "arm": elf.EM_ARM}

// checkELF reads the library's header first, because the dynamic loader
// reports a library built for another architecture as "No such file".
func checkELF(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("not a shared library: %w", err)
	}
	defer f.Close()
	if want, ok := machines[runtime.GOARCH]; ok && f.Machine != want {
		return fmt.Errorf("built for %s, but this is %s/%s (%s)", f.Machine, runtime.GOOS, runtime.GOARCH, want)
	}
	if f.Type != elf.ET_DYN {
		return fmt.Errorf("ELF type %s, not a shared library", f.Type)
	}
	return nil
}

// Version is the library's version, such as "1.30.0".
func (r *Runtime) Version() string { return r.version }

// status turns an OrtStatus into an error and releases it.
func (r *Runtime) status(st uintptr) error {
	if st == 0 {
		return nil
	}
	msg := r.api.getErrorMessage(st)
	r.api.releaseStatus(st)
	return errors.New(msg)
}

// SessionOptions tune a session.
type SessionOptions struct {
	// Threads is the number of threads one Run may use; 0 means 1, which
	// gives the best throughput when each core runs its own image.
	Threads int
	// NoArena turns off ONNX Runtime's CPU memory arena and memory
	// patterns. Both pay off when every run has the same shapes; with
	// inputs that change size on every run (text lines of any width) the
	// arena keeps the largest it ever needed, per thread, for good.
	NoArena bool
}

// Session is one loaded model. Run is safe for concurrent use.
type Session struct {
	rt          *Runtime
	ptr         uintptr
	inputNames  []unsafe.Pointer // C strings owned by the library's allocator
	outputNames []unsafe.Pointer
	closeOnce   sync.Once
}

// NewSession loads the model at path. The model must take exactly one input
// and give at least one output; Run returns the first. Failures wrap ErrModel
// with ONNX Runtime's own reason.
func (r *Runtime) NewSession(path string, opts SessionOptions) (*Session, error) {
	threads := opts.Threads
	if threads <= 0 {
		threads = defaultThreadsPerCall
	}
	var so uintptr
	if err := r.status(r.api.createSessionOptions(&so)); err != nil {
		return nil, fmt.Errorf("%w: session options: %v", ErrModel, err)
	}
	defer r.api.releaseSessionOptions(so)
	sets := []func() uintptr{
		func() uintptr { return r.api.setIntraOpNumThreads(so, int32(threads)) },
		func() uintptr { return r.api.setInterOpNumThreads(so, 1) },
		func() uintptr { return r.api.setGraphOptimization(so, ortEnableAll) },
	}
	if opts.NoArena {
		sets = append(sets, func() uintptr { return r.api.disableCPUMemArena(so) }, func() uintptr { return r.api.disableMemPattern(so) })
	}
	for _, set := range sets {
		if err := r.status(set()); err != nil {
			return nil, fmt.Errorf("%w: session options: %v", ErrModel, err)
		}
	}
	s := &Session{rt: r}
	if err := r.status(r.api.createSession(r.env, path, so, &s.ptr)); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrModel, path, err)
	}
	var nIn, nOut uintptr
	if err := r.status(r.api.sessionGetInputCount(s.ptr, &nIn)); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w: %s: inputs: %v", ErrModel, path, err)
	}
	if err := r.status(r.api.sessionGetOutputCount(s.ptr, &nOut)); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w: %s: outputs: %v", ErrModel, path, err)
	}
	if nIn != 1 || nOut < 1 {
		s.Close()
		return nil, fmt.Errorf("%w: %s: %d inputs and %d outputs, want 1 and at least 1", ErrModel, path, nIn, nOut)
	}
	var in, out unsafe.Pointer
	if err := r.status(r.api.sessionGetInputName(s.ptr, 0, r.alloc, &in)); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w: %s: input name: %v", ErrModel, path, err)
	}
	s.inputNames = []unsafe.Pointer{in}
	if err := r.status(r.api.sessionGetOutputName(s.ptr, 0, r.alloc, &out)); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w: %s: output name: %v", ErrModel, path, err)
	}
	s.outputNames = []unsafe.Pointer{out}
	return s, nil
}

// InputName is the model's input, for messages.
func (s *Session) InputName() string { return cString(s.inputNames[0]) }

// Tensor is a dense float32 tensor in row-major order.
type Tensor struct {
	Shape []int64
	Data  []float32
}

// Run feeds in to the model and returns its first output, copied into Go
// memory. in.Data must hold exactly the product of in.Shape elements.
func (s *Session) Run(in Tensor) (Tensor, error) {
	n := int64(1)
	for _, d := range in.Shape {
		if d <= 0 {
			return Tensor{}, fmt.Errorf("%w: input shape %v has a dimension ≤ 0", ErrRun, in.Shape)
		}
		n *= d
	}
	if len(in.Shape) == 0 || int64(len(in.Data)) != n {
		return Tensor{}, fmt.Errorf("%w: input shape %v needs %d values, got %d", ErrRun, in.Shape, n, len(in.Data))
	}
	r := s.rt
	// ONNX Runtime reads the input from Go memory for the whole Run, so the
	// buffer is pinned until the value is released.
	var pin runtime.Pinner
	defer pin.Unpin()
	pin.Pin(&in.Data[0])
	pin.Pin(&in.Shape[0])
	var input uintptr
	if err := r.status(r.api.createTensorWithData(r.memInfo, unsafe.Pointer(&in.Data[0]), uintptr(n)*4,
		&in.Shape[0], uintptr(len(in.Shape)), ortTensorFloat, &input)); err != nil {
		return Tensor{}, fmt.Errorf("%w: input tensor %v: %v", ErrRun, in.Shape, err)
	}
	defer r.api.releaseValue(input)

	var output uintptr
	pin.Pin(&s.inputNames[0])
	pin.Pin(&s.outputNames[0])
	if err := r.status(r.api.run(s.ptr, 0, &s.inputNames[0], &input, 1, &s.outputNames[0], 1, &output)); err != nil {
		return Tensor{}, fmt.Errorf("%w: %v", ErrRun, err)
	}
	defer r.api.releaseValue(output)
	return s.copyOut(output)
}

// copyOut copies a float32 output value into Go memory.
func (s *Session) copyOut(v uintptr) (Tensor, error) {
	r := s.rt
	var info uintptr
	if err := r.status(r.api.getTensorTypeAndShape(v, &info)); err != nil {
		return Tensor{}, fmt.Errorf("%w: output shape: %v", ErrRun, err)
	}
	defer r.api.releaseTensorTypeAndShape(info)
	var dims uintptr
	if err := r.status(r.api.getDimensionsCount(info, &dims)); err != nil {
		return Tensor{}, fmt.Errorf("%w: output shape: %v", ErrRun, err)
	}
	if dims == 0 || dims > maxDimensions {
		return Tensor{}, fmt.Errorf("%w: output has %d dimensions", ErrRun, dims)
	}
	shape := make([]int64, dims)
	if err := r.status(r.api.getDimensions(info, &shape[0], dims)); err != nil {
		return Tensor{}, fmt.Errorf("%w: output shape: %v", ErrRun, err)
	}
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	var data unsafe.Pointer
	if err := r.status(r.api.getTensorMutableData(v, &data)); err != nil {
		return Tensor{}, fmt.Errorf("%w: output data: %v", ErrRun, err)
	}
	out := Tensor{Shape: shape, Data: make([]float32, n)}
	if n > 0 {
		copy(out.Data, unsafe.Slice((*float32)(data), n))
	}
	return out, nil
}

// Close releases the session. It is safe to call more than once, and must
// not race with Run.
func (s *Session) Close() {
	s.closeOnce.Do(func() {
		for _, p := range append(s.inputNames, s.outputNames...) {
			s.rt.api.allocatorFree(s.rt.alloc, p)
		}
		s.inputNames, s.outputNames = nil, nil
		if s.ptr != 0 {
			s.rt.api.releaseSession(s.ptr)
			s.ptr = 0
		}
	})
}

// cString copies a NUL-terminated C string.
func cString(p unsafe.Pointer) string {
	if p == nil {
		return ""
	}
	b := unsafe.Slice((*byte)(p), maxNameLength)
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
