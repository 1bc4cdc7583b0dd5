// NativeSession: turns the plan lib/session compiles (plain JS objects and typed arrays) into an
// exec::GraphDesc, builds the Executor once (weights packed), and runs it synchronously or on a
// libuv worker thread. Every field of the plan and of each feed is checked here again.
#include <napi.h>

#include <chrono>
#include <cstring>
#include <memory>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "addon/addon-data.h"
#include "addon/args.h"
#include "addon/errors.h"
#include "exec/graph.h"
#include "kernels/dispatch.h"

namespace ternion {
namespace addon {
namespace {

using exec::DType;

DType parse_dtype(const std::string& s, const std::string& where) {
  if (s == "float32") return DType::F32;
  if (s == "uint8") return DType::U8;
  if (s == "int8") return DType::I8;
  if (s == "int32") return DType::I32;
  if (s == "int64") return DType::I64;
  if (s == "bool") return DType::Bool;
  throw_coded("ERR_DTYPE", where + ": unsupported data type \"" + s + "\"");
}

napi_typedarray_type array_type(DType t) {
  switch (t) {
    case DType::F32: return napi_float32_array;
    case DType::U8: case DType::Bool: return napi_uint8_array;
    case DType::I8: return napi_int8_array;
    case DType::I32: return napi_int32_array;
    case DType::I64: return napi_bigint64_array;
  }
  return napi_uint8_array;
}

exec::Shape parse_dims(const Napi::Value& v, const std::string& where) {
  TERNION_THROW_IF(!v.IsArray(), "ERR_INVALID_ARGUMENT", "Expected an array of dims for " + where + " but received " + received(v));
  Napi::Array a = v.As<Napi::Array>();
  exec::Shape s;
  for (uint32_t i = 0; i < a.Length(); ++i) s.push_back(get_int(a.Get(i), (where + " dims").c_str(), 0, int64_t(1) << 40));
  exec::shape_size(s);  // throws on overflow
  return s;
}

// A typed array of the dtype's class with exactly the dims' element count.
Napi::TypedArray check_data(const Napi::Value& v, DType dtype, const exec::Shape& dims, const std::string& where) {
  TERNION_THROW_IF(!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != array_type(dtype), "ERR_DTYPE",
                   "Expected " + std::string(exec::dtype_name(dtype)) + " data for " + where + " but received " + received(v));
  Napi::TypedArray a = v.As<Napi::TypedArray>();
  const size_t n = static_cast<size_t>(exec::shape_size(dims));
  TERNION_THROW_IF(a.ElementLength() != n, "ERR_SHAPE_MISMATCH",
                   where + " has " + std::to_string(a.ElementLength()) + " elements but its dims " + exec::shape_str(dims) + " hold " + std::to_string(n));
  return a;
}

exec::HostTensor copy_tensor(const Napi::Object& o, const std::string& where) {
  const DType dtype = parse_dtype(get_string_or(o, "dtype", ""), where);
  const exec::Shape dims = parse_dims(o.Get("dims"), where);
  Napi::TypedArray a = check_data(o.Get("data"), dtype, dims, where);
  exec::HostTensor t = exec::make_host_tensor(dtype, dims);
  std::memcpy(t.storage.get(), static_cast<char*>(a.ArrayBuffer().Data()) + a.ByteOffset(), a.ByteLength());
  return t;
}

// Subgraphs nest (an If inside a Loop's body...); a plan deeper than this is refused, so that a
// malformed or cyclic plan object cannot exhaust the stack.
constexpr int kMaxPlanDepth = 64;

exec::GraphDesc parse_plan(const Napi::Object& plan, int depth = 0);

exec::Attr parse_attr(const Napi::Value& v, const std::string& where, int depth) {
  TERNION_THROW_IF(!v.IsObject(), "ERR_MODEL_FORMAT", where + " is not an attribute object");
  Napi::Object o = v.As<Napi::Object>();
  const std::string type = get_string_or(o, "type", "");
  Napi::Value value = o.Get("value");
  exec::Attr a;
  auto number = [&](const Napi::Value& x) {
    TERNION_THROW_IF(!x.IsNumber(), "ERR_MODEL_FORMAT", where + " holds " + received(x) + ", not a number");
    return x.As<Napi::Number>().DoubleValue();
  };
  // int64 attributes arrive as doubles; values past +-2^62 (INT64_MAX sentinels) are clamped.
  auto to_int = [&](double d) -> int64_t {
    if (d >= 4.6e18) return INT64_MAX;
    if (d <= -4.6e18) return INT64_MIN;
    return static_cast<int64_t>(d);
  };
  if (type == "int") {
    a.kind = exec::Attr::Int, a.i = to_int(number(value));
  } else if (type == "float") {
    a.kind = exec::Attr::Float, a.f = static_cast<float>(number(value));
  } else if (type == "string") {
    TERNION_THROW_IF(!value.IsString(), "ERR_MODEL_FORMAT", where + " is not a string");
    a.kind = exec::Attr::String, a.s = value.As<Napi::String>().Utf8Value();
  } else if (type == "strings") {
    TERNION_THROW_IF(!value.IsArray(), "ERR_MODEL_FORMAT", where + " is not a list");
    Napi::Array arr = value.As<Napi::Array>();
    a.kind = exec::Attr::Strings;
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      TERNION_THROW_IF(!arr.Get(i).IsString(), "ERR_MODEL_FORMAT", where + " holds " + received(arr.Get(i)) + ", not a string");
      a.strings.push_back(arr.Get(i).As<Napi::String>().Utf8Value());
    }
  } else if (type == "ints" || type == "floats") {
    TERNION_THROW_IF(!value.IsArray(), "ERR_MODEL_FORMAT", where + " is not a list");
    Napi::Array arr = value.As<Napi::Array>();
    a.kind = type == "ints" ? exec::Attr::Ints : exec::Attr::Floats;
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      const double d = number(arr.Get(i));
      if (type == "ints") a.ints.push_back(to_int(d));
      else a.floats.push_back(static_cast<float>(d));
    }
  } else if (type == "tensor") {
    TERNION_THROW_IF(!value.IsObject(), "ERR_MODEL_FORMAT", where + " is not a tensor");
    a.kind = exec::Attr::TensorValue, a.t = copy_tensor(value.As<Napi::Object>(), where);
  } else if (type == "graph") {
    // A complete plan of its own (its own value ids); outer values it reads are its last inputs.
    TERNION_THROW_IF(!value.IsObject(), "ERR_MODEL_FORMAT", where + " is not a plan object");
    a.kind = exec::Attr::Graph;
    a.g = std::make_shared<const exec::GraphDesc>(parse_plan(value.As<Napi::Object>(), depth + 1));
  } else {
    throw_coded("ERR_MODEL_FORMAT", where + " has unsupported attribute type \"" + type + "\"");
  }
  return a;
}

std::vector<int> parse_ids(const Napi::Value& v, const std::string& where) {
  TERNION_THROW_IF(!v.IsArray(), "ERR_MODEL_FORMAT", where + " is not a list of value ids");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int> ids;
  for (uint32_t i = 0; i < a.Length(); ++i) ids.push_back(static_cast<int>(get_int(a.Get(i), where.c_str(), -1, INT32_MAX)));
  return ids;
}

// The static shape a plan value may declare: dims numbers (a dim that is not a non-negative
// integer is unknown); no `dims`, unknown rank.
void parse_value_dims(const Napi::Object& v, exec::ValueDesc& d) {
  Napi::Value dims = v.Get("dims");
  if (dims.IsUndefined() || dims.IsNull()) return;
  TERNION_THROW_IF(!dims.IsArray(), "ERR_MODEL_FORMAT", "dims of value '" + d.name + "' is not an array");
  Napi::Array a = dims.As<Napi::Array>();
  TERNION_THROW_IF(a.Length() > 64, "ERR_MODEL_FORMAT", "value '" + d.name + "' declares more than 64 dims");
  d.ranked = true;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value x = a.Get(i);
    const double n = x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : -1;
    d.dims.push_back(n >= 0 && n <= double(int64_t(1) << 40) && n == static_cast<double>(static_cast<int64_t>(n)) ? static_cast<int64_t>(n) : -1);
  }
}

exec::GraphDesc parse_plan(const Napi::Object& plan, int depth) {
  TERNION_THROW_IF(depth > kMaxPlanDepth, "ERR_MODEL_FORMAT", "subgraphs nest more than " + std::to_string(kMaxPlanDepth) + " deep");
  exec::GraphDesc g;
  Napi::Value values = plan.Get("values");
  TERNION_THROW_IF(!values.IsArray(), "ERR_MODEL_FORMAT", "plan.values is not an array");
  Napi::Array va = values.As<Napi::Array>();
  for (uint32_t i = 0; i < va.Length(); ++i) {
    TERNION_THROW_IF(!va.Get(i).IsObject(), "ERR_MODEL_FORMAT", "plan.values[" + std::to_string(i) + "] is not an object");
    Napi::Object v = va.Get(i).As<Napi::Object>();
    const std::string name = get_string_or(v, "name", "");
    exec::ValueDesc d;
    d.name = name;
    d.dtype = parse_dtype(get_string_or(v, "dtype", ""), "value '" + name + "'");
    parse_value_dims(v, d);
    g.values.push_back(std::move(d));
  }
  Napi::Value consts = plan.Get("constants");
  TERNION_THROW_IF(!consts.IsArray(), "ERR_MODEL_FORMAT", "plan.constants is not an array");
  Napi::Array ca = consts.As<Napi::Array>();
  for (uint32_t i = 0; i < ca.Length(); ++i) {
    TERNION_THROW_IF(!ca.Get(i).IsObject(), "ERR_MODEL_FORMAT", "plan.constants[" + std::to_string(i) + "] is not an object");
    Napi::Object c = ca.Get(i).As<Napi::Object>();
    const int id = static_cast<int>(get_int(c.Get("id"), "constant id", 0, static_cast<int64_t>(g.values.size()) - 1));
    g.constants[id] = copy_tensor(c, "constant '" + g.values[id].name + "'");
    TERNION_THROW_IF(g.constants[id].dtype != g.values[id].dtype, "ERR_MODEL_FORMAT", "constant '" + g.values[id].name + "' has the wrong dtype");
  }
  Napi::Value nodes = plan.Get("nodes");
  TERNION_THROW_IF(!nodes.IsArray(), "ERR_MODEL_FORMAT", "plan.nodes is not an array");
  Napi::Array na = nodes.As<Napi::Array>();
  for (uint32_t i = 0; i < na.Length(); ++i) {
    TERNION_THROW_IF(!na.Get(i).IsObject(), "ERR_MODEL_FORMAT", "plan.nodes[" + std::to_string(i) + "] is not an object");
    Napi::Object n = na.Get(i).As<Napi::Object>();
    exec::NodeDesc d;
    d.op = get_string_or(n, "op", "");
    d.name = get_string_or(n, "name", "");
    d.opset = static_cast<int>(get_int_or(n, "opset", 0, 0, 1000));
    d.inputs = parse_ids(n.Get("inputs"), d.where() + " inputs");
    d.outputs = parse_ids(n.Get("outputs"), d.where() + " outputs");
    Napi::Value attrs = n.Get("attrs");
    if (attrs.IsObject()) {
      Napi::Object ao = attrs.As<Napi::Object>();
      Napi::Array keys = ao.GetPropertyNames();
      exec::AttrMap map;
      for (uint32_t k = 0; k < keys.Length(); ++k) {
        const std::string key = keys.Get(k).As<Napi::String>().Utf8Value();
        map[key] = parse_attr(ao.Get(key), d.where() + " attribute '" + key + "'", depth);
      }
      d.attrs = std::make_shared<const exec::AttrMap>(std::move(map));
    }
    g.nodes.push_back(std::move(d));
  }
  g.inputs = parse_ids(plan.Get("inputs"), "plan inputs");
  g.outputs = parse_ids(plan.Get("outputs"), "plan outputs");
  return g;
}

struct Feed {
  exec::Tensor tensor;
};

class NativeSession : public Napi::ObjectWrap<NativeSession> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeSession",
                       {InstanceMethod<&NativeSession::RunSync>("runSync"), InstanceMethod<&NativeSession::RunAsync>("run"),
                        InstanceMethod<&NativeSession::Release>("release"),
                        InstanceAccessor<&NativeSession::GetIsa>("isa"),
                        InstanceAccessor<&NativeSession::GetPackedBytes>("packedBytes"),
                        InstanceMethod<&NativeSession::MemoryUsage>("memoryUsage")});
  }

  // new NativeSession(plan, { isa?, threads? })
  explicit NativeSession(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeSession>(info) {
    try {
      TERNION_THROW_IF(info.Length() < 1 || !info[0].IsObject(), "ERR_INVALID_ARGUMENT", "Expected a plan object");
      Napi::Object opt = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(info.Env());
      AddonData& d = data(info.Env());
      const std::string isa = get_string_or(opt, "isa", "");
      const kernels::KernelTable* table = d.table;
      std::string err = d.table_error;
      if (!isa.empty()) table = kernels::select_table(isa.c_str(), &err);
      TERNION_THROW_IF(!table, "ERR_INVALID_ARGUMENT", err);
      threads_ = static_cast<int>(get_int_or(opt, "threads", d.default_threads, 1, 1024));
      exec_ = std::make_shared<exec::Executor>(parse_plan(info[0].As<Napi::Object>()), table);
      table_name_ = table->name;
#if defined(__GLIBC__)
      // Building copied the model's weights and freed most of those copies after packing; glibc
      // keeps freed heap pages resident until trimmed. Give them back, so a session's resident
      // memory is its packed weights and arena, not the build's high-water mark.
      malloc_trim(0);
#endif
    } catch (const CodedError& e) {
      make_error(info.Env(), e.code, e.message).ThrowAsJavaScriptException();
    } catch (const exec::ExecError& e) {
      make_error(info.Env(), e.code, e.what()).ThrowAsJavaScriptException();
    } catch (const std::bad_alloc&) {
      make_error(info.Env(), "ERR_INTERNAL", "out of memory while building the session").ThrowAsJavaScriptException();
    } catch (const std::exception& e) {
      make_error(info.Env(), "ERR_INTERNAL", std::string("internal error while building the session: ") + e.what()).ThrowAsJavaScriptException();
    }
  }

 private:
  // Feeds: an array of { dtype, dims, data } parallel to the plan's inputs.
  std::vector<exec::Tensor> parse_feeds(const Napi::Value& v, Napi::Object keep) {
    TERNION_THROW_IF(!exec_, "ERR_SESSION_RELEASED", "The session was released");
    TERNION_THROW_IF(!v.IsArray(), "ERR_INVALID_ARGUMENT", "Expected an array of feeds");
    Napi::Array a = v.As<Napi::Array>();
    const auto& g = exec_->graph();
    TERNION_THROW_IF(a.Length() != g.inputs.size(), "ERR_INPUT_NAME",
                     "Expected " + std::to_string(g.inputs.size()) + " feeds but received " + std::to_string(a.Length()));
    std::vector<exec::Tensor> feeds;
    for (uint32_t i = 0; i < a.Length(); ++i) {
      const auto& vd = g.values[g.inputs[i]];
      TERNION_THROW_IF(!a.Get(i).IsObject(), "ERR_INVALID_ARGUMENT", "feed '" + vd.name + "' is not a tensor");
      Napi::Object o = a.Get(i).As<Napi::Object>();
      const DType dtype = parse_dtype(get_string_or(o, "dtype", ""), "feed '" + vd.name + "'");
      TERNION_THROW_IF(dtype != vd.dtype, "ERR_DTYPE",
                       "feed '" + vd.name + "' is " + exec::dtype_name(dtype) + " but the model expects " + exec::dtype_name(vd.dtype));
      exec::Shape dims = parse_dims(o.Get("dims"), "feed '" + vd.name + "'");
      Napi::TypedArray arr = check_data(o.Get("data"), dtype, dims, "feed '" + vd.name + "'");
      keep.Set(i, arr);
      feeds.push_back(exec::Tensor{dtype, dims, static_cast<char*>(arr.ArrayBuffer().Data()) + arr.ByteOffset()});
    }
    return feeds;
  }

  // Where a message about output i's pre-allocated tensor points.
  static std::string target_where(const exec::GraphDesc& g, size_t i) {
    return "the tensor given for output '" + g.values[g.outputs[i]].name + "'";
  }

  // Optional pre-allocated outputs (onnxruntime's fetches): an array parallel to the graph's
  // outputs, each undefined or a tensor {dtype, dims, data} that output is copied into. Checked
  // here against the declared dtype; the dims once the run has computed them (to_js).
  static Napi::Value parse_into(const exec::GraphDesc& g, const Napi::Value& v) {
    if (v.IsUndefined()) return v;
    TERNION_THROW_IF(!v.IsArray() || v.As<Napi::Array>().Length() != g.outputs.size(), "ERR_INVALID_ARGUMENT",
                     "Expected an array of " + std::to_string(g.outputs.size()) + " output targets but received " + received(v));
    Napi::Array a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value e = a.Get(i);
      if (e.IsUndefined()) continue;
      const auto& vd = g.values[g.outputs[i]];
      const std::string where = target_where(g, i);
      TERNION_THROW_IF(!e.IsObject(), "ERR_INVALID_ARGUMENT", where + " is not a tensor");
      Napi::Object o = e.As<Napi::Object>();
      const DType dtype = parse_dtype(get_string_or(o, "dtype", ""), where);
      TERNION_THROW_IF(dtype != vd.dtype, "ERR_DTYPE",
                       where + " is " + exec::dtype_name(dtype) + " but the output is " + exec::dtype_name(vd.dtype));
      check_data(o.Get("data"), dtype, parse_dims(o.Get("dims"), where), where);
    }
    return a;
  }

  // The run's outputs as {dtype, dims, data}: copied into new ArrayBuffers, or into the
  // caller's tensors (parse_into) when their dims are the ones computed.
  static Napi::Array to_js(Napi::Env env, const exec::GraphDesc& g, const std::vector<exec::Tensor>& outs, const Napi::Value& into) {
    Napi::Array result = Napi::Array::New(env, outs.size());
    for (size_t i = 0; i < outs.size(); ++i) {
      const exec::Tensor& t = outs[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("dtype", exec::dtype_name(t.dtype));
      Napi::Array dims = Napi::Array::New(env, t.shape.size());
      for (size_t d = 0; d < t.shape.size(); ++d) dims.Set(d, Napi::Number::New(env, static_cast<double>(t.shape[d])));
      o.Set("dims", dims);
      Napi::Value target = into.IsArray() ? into.As<Napi::Array>().Get(static_cast<uint32_t>(i)) : Napi::Value();
      if (target.IsObject()) {
        Napi::Object to = target.As<Napi::Object>();
        const std::string where = target_where(g, i);
        const exec::Shape given = parse_dims(to.Get("dims"), where);
        TERNION_THROW_IF(given != t.shape, "ERR_SHAPE_MISMATCH",
                         where + " has dims " + exec::shape_str(given) + " but this run computed " + exec::shape_str(t.shape));
        Napi::TypedArray arr = check_data(to.Get("data"), t.dtype, given, where);
        if (t.bytes()) std::memcpy(static_cast<char*>(arr.ArrayBuffer().Data()) + arr.ByteOffset(), t.data, t.bytes());
        o.Set("data", arr);
        result.Set(i, o);
        continue;
      }
      Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, t.bytes());
      if (t.bytes()) std::memcpy(buf.Data(), t.data, t.bytes());
      const size_t n = static_cast<size_t>(t.size());
      Napi::Value arr;
      switch (t.dtype) {
        case DType::F32: arr = Napi::Float32Array::New(env, n, buf, 0); break;
        case DType::U8: case DType::Bool: arr = Napi::Uint8Array::New(env, n, buf, 0); break;
        case DType::I8: arr = Napi::Int8Array::New(env, n, buf, 0); break;
        case DType::I32: arr = Napi::Int32Array::New(env, n, buf, 0); break;
        case DType::I64: arr = Napi::BigInt64Array::New(env, n, buf, 0); break;
      }
      o.Set("data", arr);
      result.Set(i, o);
    }
    return result;
  }

  int threads_for(const Napi::CallbackInfo& info) {
    if (info.Length() > 1 && info[1].IsNumber()) return static_cast<int>(get_int(info[1], "threads", 1, 1024));
    return threads_;
  }

  Napi::Value RunSync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    try {
      Napi::Object keep = Napi::Object::New(env);
      auto feeds = parse_feeds(info.Length() ? info[0] : env.Undefined(), keep);
      // runSync(feeds, threads?, into?)
      Napi::Value into = parse_into(exec_->graph(), info.Length() > 2 ? info[2] : env.Undefined());
      std::vector<exec::BlockPool::Block> blocks;
      auto outs = exec_->run(feeds, data(env).pool.get(), threads_for(info), blocks);
      Napi::Array result = to_js(env, exec_->graph(), outs, into);
      exec_->recycle(blocks);  // copied out: the next run writes its outputs there again
      return result;
    } catch (const CodedError& e) {
      make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    } catch (const exec::ExecError& e) {
      make_error(env, e.code, e.what()).ThrowAsJavaScriptException();
    } catch (const std::bad_alloc&) {
      make_error(env, "ERR_INTERNAL", "out of memory during the run").ThrowAsJavaScriptException();
    } catch (const std::exception& e) {
      make_error(env, "ERR_INTERNAL", std::string("internal error during the run: ") + e.what()).ThrowAsJavaScriptException();
    }
    return env.Undefined();
  }

  class RunWorker : public Napi::AsyncWorker {
   public:
    RunWorker(Napi::Env env, std::shared_ptr<exec::Executor> ex, std::vector<exec::Tensor> feeds, Napi::Object keep, int threads,
              const int32_t* cancel)
        : Napi::AsyncWorker(env, "ternion:run"), deferred_(Napi::Promise::Deferred::New(env)), exec_(std::move(ex)),
          feeds_(std::move(feeds)), keep_(Napi::Persistent(keep)), threads_(threads), pool_(data(env).pool), cancel_(cancel) {}
    Napi::Promise Promise() { return deferred_.Promise(); }

   protected:
    void Execute() override {
      try {
        const auto start = std::chrono::steady_clock::now();
        outs_ = exec_->run(feeds_, pool_.get(), threads_, blocks_, cancel_);
        micros_ = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
      } catch (const exec::ExecError& e) {
        code_ = e.code, message_ = e.what();
        outs_.clear();
        blocks_.clear();  // an aborted or failed run gives its buffers back now
      } catch (const std::bad_alloc&) {
        code_ = "ERR_INTERNAL", message_ = "out of memory during the run";
      } catch (const std::exception& e) {
        code_ = "ERR_INTERNAL", message_ = std::string("internal error during the run: ") + e.what();
      }
    }
    void OnOK() override {
      // During environment teardown (a worker terminated) calls into JS fail; nothing waits.
      try {
        if (!code_.empty()) {
          deferred_.Reject(make_error(Env(), code_, message_).Value());
        } else {
          // The outputs, and as `micros` how long the graph ran on the worker (the session's
          // estimate for running short inferences inline).
          Napi::Array result = to_js(Env(), exec_->graph(), outs_, keep_.Value().Get("into"));
          exec_->recycle(blocks_);  // copied out: the next run writes its outputs there again
          result.Set("micros", Napi::Number::New(Env(), micros_));
          deferred_.Resolve(result);
        }
      } catch (const CodedError& e) {  // a pre-allocated output of the wrong dims
        deferred_.Reject(make_error(Env(), e.code, e.message).Value());
      } catch (const Napi::Error&) {
      }
      blocks_.clear();
    }

   private:
    Napi::Promise::Deferred deferred_;
    std::shared_ptr<exec::Executor> exec_;  // keeps the model alive even if released meanwhile
    std::vector<exec::Tensor> feeds_, outs_;
    std::vector<exec::BlockPool::Block> blocks_;
    Napi::ObjectReference keep_;
    int threads_;
    std::shared_ptr<ThreadPool> pool_;  // outlives the environment if a worker is terminated
    const int32_t* cancel_;              // in an Int32Array kept alive by keep_ (or null)
    std::string code_, message_;
    double micros_ = 0;
  };

  Napi::Value RunAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    try {
      Napi::Object keep = Napi::Object::New(env);
      auto feeds = parse_feeds(info.Length() ? info[0] : env.Undefined(), keep);
      // Optional third argument: an Int32Array(1) cancel flag that JavaScript sets to 1.
      const int32_t* cancel = nullptr;
      if (info.Length() > 2 && !info[2].IsUndefined()) {
        auto flag = get_array<int32_t>(info[2], "cancel", napi_int32_array, "Int32Array", 1);
        keep.Set("cancel", flag);
        cancel = flag.Data();
      }
      // Optional fourth: the pre-allocated outputs (parse_into), kept alive for the run.
      keep.Set("into", parse_into(exec_->graph(), info.Length() > 3 ? info[3] : env.Undefined()));
      auto* worker = new RunWorker(env, exec_, std::move(feeds), keep, threads_for(info), cancel);
      Napi::Promise p = worker->Promise();
      worker->Queue();
      return p;
    } catch (const CodedError& e) {
      auto d = Napi::Promise::Deferred::New(env);
      d.Reject(make_error(env, e.code, e.message).Value());
      return d.Promise();
    }
  }

  Napi::Value Release(const Napi::CallbackInfo& info) {
    exec_.reset();  // runs in flight hold their own reference
    return info.Env().Undefined();
  }

  Napi::Value GetIsa(const Napi::CallbackInfo& info) {
    return exec_ ? Napi::Value(Napi::String::New(info.Env(), exec_table_name())) : info.Env().Null();
  }
  const char* exec_table_name() const { return table_name_; }
  Napi::Value GetPackedBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), exec_ ? static_cast<double>(exec_->packed_bytes()) : 0);
  }
  // { packedBytes, constantBytes, arenaBytes }: the native memory this session holds.
  Napi::Value MemoryUsage(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("packedBytes", static_cast<double>(exec_ ? exec_->packed_bytes() : 0));
    o.Set("constantBytes", static_cast<double>(exec_ ? exec_->constant_bytes() : 0));
    o.Set("arenaBytes", static_cast<double>(exec_ ? exec_->arena_bytes() : 0));
    return o;
  }

  std::shared_ptr<exec::Executor> exec_;
  int threads_ = 1;
  const char* table_name_ = "";
};

}  // namespace

void register_session(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeSession", NativeSession::Define(env));
}

}  // namespace addon
}  // namespace ternion
