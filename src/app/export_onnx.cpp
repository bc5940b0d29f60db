// ranksweep export RUN.h5|STUDY.h5 --format onnx: the trained model (a
// study's best trial) as an ONNX graph, opset 13, written with Debian's ONNX
// protobuf classes and checked by ONNX's own checker before it is written.
//
// The graph takes what `infer` reads: the raw image (N, C, H, W), uint8 pixels
// (scaled by 1/255) or float32 values (taken as they are), normalised with
// the training split's per-channel mean and std, and gives `logits` and
// `probabilities` (N, classes). Dropout is the identity, batch norm uses its
// running statistics; the class names, the normalisation and the config are
// metadata (model.metadata_props).
#include <map>
#include <nlohmann/json.hpp>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include "app/commands.h"
#include "backend/backend.h"
#include "build_info.h"
#include "config/config.h"
#include "error.h"
#include "kernels/hd_math.h"
#include "nn/model.h"
#include "train/run_file.h"

namespace rs {
namespace {

constexpr int kOpset = 13;  // ONNX Runtime, TensorRT and onnx 1.12's checker all take it

// Appends nodes and initializers to a graph; every tensor name is unique.
class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto& g) : m_g(g) {}

  // A float initializer named `name` with the given shape and values.
  std::string constant(const std::string& name, const std::vector<int64_t>& shape, const float* data) {
    onnx::TensorProto* t = m_g.add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    size_t n = 1;
    for (int64_t d : shape) t->add_dims(d), n *= size_t(d);
    t->set_raw_data(data, n * sizeof(float));  // little-endian, as ONNX's raw_data is
    return name;
  }
  std::string scalar(const std::string& name, float x) { return constant(name, {}, &x); }
  std::string int64s(const std::string& name, const std::vector<int64_t>& v) {
    onnx::TensorProto* t = m_g.add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(int64_t(v.size()));
    for (int64_t x : v) t->add_int64_data(x);
    return name;
  }

  // A node of type `op` named `name`, writing the tensor `name`.
  onnx::NodeProto* node(const std::string& op, const std::string& name, const std::vector<std::string>& inputs) {
    onnx::NodeProto* n = m_g.add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const std::string& in : inputs) n->add_input(in);
    n->add_output(name);
    return n;
  }

 private:
  onnx::GraphProto& m_g;
};

void attr(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}
void attr(onnx::NodeProto* n, const std::string& name, int64_t v) {
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}
void attr(onnx::NodeProto* n, const std::string& name, float v) {
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

void value_info(onnx::ValueInfoProto* v, const std::string& name, int elem, const std::vector<int64_t>& dims) {
  v->set_name(name);
  onnx::TypeProto_Tensor* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(elem);
  onnx::TensorShapeProto* s = t->mutable_shape();
  s->add_dim()->set_dim_param("N");  // any batch size
  for (int64_t d : dims) s->add_dim()->set_dim_value(d);
}

// The model's tensors by "layer.tensor": shape and values (parameters and state).
struct Tensors {
  std::map<std::string, std::pair<std::vector<int64_t>, const float*>> by_name;
  std::vector<float> params, state;
  explicit Tensors(const Model& m) : params(m.params_host()), state(m.state_host()) {
    for (const ParamInfo& p : m.param_info()) by_name[p.layer + "." + p.tensor] = {p.shape, params.data() + p.offset};
    for (const ParamInfo& p : m.state_info()) by_name[p.layer + "." + p.tensor] = {p.shape, state.data() + p.offset};
  }
};

// One layer's nodes, from tensor x (4-D when `spatial`, else (N, features));
// returns the layer's output tensor.
std::string add_layer(GraphBuilder& g, const Layer& layer, const Tensors& t, std::string x, bool& spatial,
                      const std::string& file) {
  const LayerSpec& s = layer.spec();
  const std::string& n = s.name;
  const auto weights = [&](const std::string& tensor) {
    const auto& [shape, data] = t.by_name.at(n + "." + tensor);
    return g.constant(n + "." + tensor, shape, data);
  };
  const Shape in = layer.in_shape();
  if (s.type == "dense") {
    if (spatial) x = g.node("Flatten", n + ".flat", {x})->name(), spatial = false;
    onnx::NodeProto* gemm = g.node("Gemm", n, {x, weights("weight"), weights("bias")});
    attr(gemm, "transB", int64_t(1));
    return n;
  }
  if (s.type == "conv2d" || s.type == "maxpool") {
    if (!spatial) x = g.node("Reshape", n + ".4d", {x, g.int64s(n + ".shape", {-1, in.c, in.h, in.w})})->name();
    spatial = true;
    const bool conv = s.type == "conv2d";
    onnx::NodeProto* op = conv ? g.node("Conv", n, {x, weights("weight"), weights("bias")}) : g.node("MaxPool", n, {x});
    attr(op, "kernel_shape", std::vector<int64_t>{s.kernel, s.kernel});
    attr(op, "strides", std::vector<int64_t>{s.stride, s.stride});
    attr(op, "pads", std::vector<int64_t>{s.padding, s.padding, s.padding, s.padding});
    return n;
  }
  if (s.type == "batchnorm") {
    onnx::NodeProto* bn =
        g.node("BatchNormalization", n,
               {x, weights("weight"), weights("bias"), weights("running_mean"), weights("running_var")});
    attr(bn, "epsilon", float(kBatchNormEps));
    return n;
  }
  if (s.type == "flatten") {
    if (!spatial) return g.node("Identity", n, {x})->name();
    spatial = false;
    return g.node("Flatten", n, {x})->name();
  }
  if (s.type == "dropout") return g.node("Identity", n, {x})->name();  // inference: the identity
  for (const ActInfo& a : kActivations) {
    if (s.type != a.name) continue;
    switch (a.act) {
      case Act::relu:
        return g.node("Relu", n, {x})->name();
      case Act::tanh:
        return g.node("Tanh", n, {x})->name();
      case Act::sigmoid:
        return g.node("Sigmoid", n, {x})->name();
      case Act::gelu: {  // x Phi(x) = x (1 + erf(x / sqrt 2)) / 2 (Gelu is an operator only from opset 20)
        const std::string e =
            g.node("Erf", n + ".erf",
                   {g.node("Div", n + ".scaled", {x, g.scalar(n + ".sqrt2", float(M_SQRT2))})->name()})
                ->name();
        const std::string one = g.node("Add", n + ".cdf2", {e, g.scalar(n + ".one", 1.f)})->name();
        const std::string half = g.node("Mul", n + ".half_x", {x, g.scalar(n + ".half", 0.5f)})->name();
        return g.node("Mul", n, {half, one})->name();
      }
    }
  }
  fail("{}: layer {} of type \"{}\" has no ONNX form; it cannot be exported", file, n, s.type);
}

void metadata(onnx::ModelProto& m, const std::string& key, const std::string& value) {
  onnx::StringStringEntryProto* e = m.add_metadata_props();
  e->set_key(key);
  e->set_value(value);
}

}  // namespace

std::string onnx_model(const ExportOptions& opt) {
  const RunFile rf = read_model_file(opt.file);
  const Config cfg = parse_config_text(rf.config_text, opt.file + " (its config)", {});
  const std::string input = !opt.input.empty() ? opt.input : cfg.data.format == "hdf5" ? "float32" : "uint8";
  std::unique_ptr<Backend> be = make_cpu_backend();
  Model model(*be, cfg.model, Shape{rf.c, rf.h, rf.w}, rf.classes, 1);
  load_into(rf, model, nullptr);
  const Tensors tensors(model);

  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("ranksweep");
  m.set_producer_version(RS_VERSION);
  m.add_opset_import()->set_version(kOpset);
  onnx::GraphProto& graph = *m.mutable_graph();
  graph.set_name("ranksweep");
  GraphBuilder g(graph);
  const int64_t C = rf.c;
  value_info(graph.add_input(), "image", input == "uint8" ? onnx::TensorProto::UINT8 : onnx::TensorProto::FLOAT,
             {C, rf.h, rf.w});
  std::string x = "image";
  if (input == "uint8") {  // as infer: pixels scaled to [0, 1], then normalised
    onnx::NodeProto* cast = g.node("Cast", "image_float", {x});
    attr(cast, "to", int64_t(onnx::TensorProto::FLOAT));
    x = g.node("Mul", "image_scaled", {cast->name(), g.scalar("pixel_scale", 1.f / 255.f)})->name();
  }
  x = g.node("Sub", "centred", {x, g.constant("input_mean", {C, 1, 1}, rf.mean.data())})->name();
  x = g.node("Mul", "normalised", {x, g.constant("input_inv_std", {C, 1, 1}, rf.inv_std.data())})->name();
  bool spatial = true;
  for (const auto& layer : model.layers()) x = add_layer(g, *layer, tensors, x, spatial, opt.file);
  g.node("Identity", "logits", {x});
  attr(g.node("Softmax", "probabilities", {"logits"}), "axis", int64_t(1));
  value_info(graph.add_output(), "logits", onnx::TensorProto::FLOAT, {rf.classes});
  value_info(graph.add_output(), "probabilities", onnx::TensorProto::FLOAT, {rf.classes});

  const std::vector<std::string> names =
      rf.class_names.empty() ? default_class_names(cfg, "", rf.classes) : rf.class_names;
  metadata(m, "class_names", nlohmann::json(names).dump());
  metadata(m, "input",
           fmt::format("{} (N, {}, {}, {}){}", input, rf.c, rf.h, rf.w,
                       input == "uint8" ? ", scaled by 1/255" : ", taken as they are"));
  metadata(m, "input_mean", nlohmann::json(rf.mean).dump());
  std::vector<float> stdv;
  for (float s : rf.inv_std) stdv.push_back(1.f / s);
  metadata(m, "input_std", nlohmann::json(stdv).dump());
  metadata(m, "ranksweep_config", rf.config_text);
  metadata(m, "source", opt.file + (rf.root.empty() ? "" : " " + rf.root));
  try {
    onnx::checker::check_model(m);
  } catch (const std::exception& e) {  // a bug of this exporter, not bad input
    throw std::logic_error(
        fmt::format("{}: the ONNX graph built from it fails ONNX's checker: {}", opt.file, e.what()));
  }
  return m.SerializeAsString();
}

}  // namespace rs
