// SPDX-License-Identifier: MPL-2.0
//! A small ONNX writer.
//!
//! burn (the trainer) has no ONNX export, and the default baseline models are built by
//! code, so gst-affect writes ONNX itself: [`proto`] declares the protobuf messages and
//! [`GraphBuilder`] assembles a graph with initializers, nodes and `affect.*` metadata.
//! Models written here are always checked through ONNX Runtime in the tests.

pub mod proto;

use prost::Message;
use proto::{
    AttributeProto, AttributeType, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, data_type,
    tensor_shape_proto::{Dimension, dimension},
    type_proto,
};

/// The opset gst-affect writes (supported by ONNX Runtime ≥ 1.14).
pub const OPSET: i64 = 17;
/// IR version matching [`OPSET`].
pub const IR_VERSION: i64 = 8;

/// A dimension of a graph input/output: fixed or named (dynamic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A dynamic size with a symbolic name (e.g. `batch`).
    Named(String),
}

impl From<i64> for Dim {
    fn from(v: i64) -> Self {
        Dim::Fixed(v)
    }
}

impl From<&str> for Dim {
    fn from(v: &str) -> Self {
        Dim::Named(v.to_owned())
    }
}

/// A node attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    /// A float.
    Float(f32),
    /// An integer.
    Int(i64),
    /// A list of integers.
    Ints(Vec<i64>),
    /// A list of floats.
    Floats(Vec<f32>),
    /// A string.
    Str(String),
}

/// Builds one ONNX model: a graph, its opset and metadata.
#[derive(Debug, Default, Clone)]
pub struct GraphBuilder {
    graph: GraphProto,
    metadata: Vec<(String, String)>,
    counter: usize,
}

fn value_info(name: &str, elem_type: i32, dims: &[Dim]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(match d {
                                Dim::Fixed(v) => dimension::Value::DimValue(*v),
                                Dim::Named(n) => dimension::Value::DimParam(n.clone()),
                            }),
                            denotation: String::new(),
                        })
                        .collect(),
                }),
            })),
            denotation: String::new(),
        }),
        doc_string: String::new(),
    }
}

impl GraphBuilder {
    /// A new, empty graph called `name`.
    pub fn new(name: &str) -> Self {
        GraphBuilder {
            graph: GraphProto {
                name: name.to_owned(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Declares a float32 graph input.
    pub fn input(&mut self, name: &str, dims: &[Dim]) -> &mut Self {
        self.graph
            .input
            .push(value_info(name, data_type::FLOAT, dims));
        self
    }

    /// Declares a float32 graph output.
    pub fn output(&mut self, name: &str, dims: &[Dim]) -> &mut Self {
        self.graph
            .output
            .push(value_info(name, data_type::FLOAT, dims));
        self
    }

    /// Adds a float32 constant tensor (weights) and returns its name.
    pub fn constant(&mut self, name: &str, dims: &[i64], values: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<i64>() as usize, values.len());
        self.graph.initializer.push(TensorProto {
            dims: dims.to_vec(),
            data_type: data_type::FLOAT,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            name: name.to_owned(),
            ..Default::default()
        });
        name.to_owned()
    }

    /// Adds an int64 constant tensor (shapes, axes) and returns its name.
    pub fn constant_i64(&mut self, name: &str, dims: &[i64], values: &[i64]) -> String {
        self.graph.initializer.push(TensorProto {
            dims: dims.to_vec(),
            data_type: data_type::INT64,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            name: name.to_owned(),
            ..Default::default()
        });
        name.to_owned()
    }

    /// A graph-unique value name starting with `stem` (for generated graphs).
    pub fn fresh(&mut self, stem: &str) -> String {
        self.counter += 1;
        format!("{stem}_{}", self.counter)
    }

    /// Adds a node `op(inputs) -> outputs` with attributes.
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: &[(&str, Attr)],
    ) -> &mut Self {
        self.counter += 1;
        let attribute = attrs
            .iter()
            .map(|(name, a)| {
                let mut p = AttributeProto {
                    name: (*name).to_owned(),
                    ..Default::default()
                };
                match a {
                    Attr::Float(f) => {
                        p.r#type = AttributeType::Float as i32;
                        p.f = *f;
                    }
                    Attr::Int(i) => {
                        p.r#type = AttributeType::Int as i32;
                        p.i = *i;
                    }
                    Attr::Ints(v) => {
                        p.r#type = AttributeType::Ints as i32;
                        p.ints = v.clone();
                    }
                    Attr::Floats(v) => {
                        p.r#type = AttributeType::Floats as i32;
                        p.floats = v.clone();
                    }
                    Attr::Str(s) => {
                        p.r#type = AttributeType::String as i32;
                        p.s = s.as_bytes().to_vec();
                    }
                }
                p
            })
            .collect();
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: outputs.iter().map(|s| (*s).to_owned()).collect(),
            name: format!("{}_{}", op, self.counter),
            op_type: op.to_owned(),
            attribute,
            ..Default::default()
        });
        self
    }

    /// Embeds the graph of the serialised model `bytes` into this one (ensembles): every
    /// node, initializer and intermediate value is renamed `<prefix>/<name>`; the
    /// embedded graph's inputs keep their names, so they read this graph's values of the
    /// same names. Control-flow sub-graphs are not supported (an error). Returns the new
    /// names of the embedded graph's outputs, in order.
    pub fn embed(&mut self, bytes: &[u8], prefix: &str) -> Result<Vec<String>, String> {
        let m = ModelProto::decode(bytes).map_err(|e| e.to_string())?;
        let graph = m.graph.ok_or("the model has no graph")?;
        let inputs: std::collections::HashSet<String> =
            graph.input.iter().map(|v| v.name.clone()).collect();
        let rename = |n: &str| -> String {
            if n.is_empty() || inputs.contains(n) {
                n.to_owned()
            } else {
                format!("{prefix}/{n}")
            }
        };
        for mut t in graph.initializer {
            if inputs.contains(&t.name) {
                return Err(format!("initializer {} shadows a graph input", t.name));
            }
            t.name = rename(&t.name);
            self.graph.initializer.push(t);
        }
        for mut n in graph.node {
            let graphs = AttributeType::Graphs as i32;
            if n.attribute
                .iter()
                .any(|a| a.g.is_some() || a.r#type == graphs)
            {
                return Err(format!("node {} has a sub-graph", n.name));
            }
            n.name = format!("{prefix}/{}", n.name);
            n.input = n.input.iter().map(|i| rename(i)).collect();
            n.output = n.output.iter().map(|o| rename(o)).collect();
            self.graph.node.push(n);
        }
        Ok(graph.output.iter().map(|o| rename(&o.name)).collect())
    }

    /// Sets a `metadata_props` entry (e.g. an `affect.*` contract key), replacing an earlier one.
    pub fn meta(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        let value = value.into();
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value,
            None => self.metadata.push((key.to_owned(), value)),
        }
        self
    }

    /// The finished model as a `ModelProto`.
    pub fn model(&self) -> ModelProto {
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            producer_name: "gst-affect".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(self.graph.clone()),
            metadata_props: self
                .metadata
                .iter()
                .map(|(k, v)| StringStringEntryProto {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            ..Default::default()
        }
    }

    /// The finished model, serialised.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.model().encode_to_vec()
    }

    /// Writes the model atomically ([`crate::dataset::write_atomic`]: a temporary file
    /// of its own, then a rename; safe when several threads write the same path).
    pub fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        crate::dataset::write_atomic(path, &self.to_bytes()).map_err(|e| match e {
            crate::dataset::DataError::Io { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        })
    }
}

/// Reads the `metadata_props` of a serialised model without ONNX Runtime.
pub fn read_metadata(bytes: &[u8]) -> Result<Vec<(String, String)>, prost::DecodeError> {
    let m = ModelProto::decode(bytes)?;
    Ok(m.metadata_props
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_prost() {
        let mut g = GraphBuilder::new("affine");
        g.input("x", &["batch".into(), 4.into()])
            .output("y", &["batch".into(), 4.into()]);
        let w = g.constant("w", &[4], &[1.0, 2.0, 3.0, 4.0]);
        g.node("Mul", &["x", &w], &["y"], &[]);
        g.meta("affect.role", "fusion").meta("affect.role", "vad");
        let bytes = g.to_bytes();
        let m = ModelProto::decode(bytes.as_slice()).unwrap();
        assert_eq!(m.ir_version, IR_VERSION);
        assert_eq!(m.opset_import[0].version, OPSET);
        let graph = m.graph.unwrap();
        assert_eq!(graph.node[0].op_type, "Mul");
        assert_eq!(graph.initializer[0].raw_data.len(), 16);
        assert_eq!(
            read_metadata(&bytes).unwrap(),
            vec![("affect.role".to_string(), "vad".to_string())]
        );
    }
}
