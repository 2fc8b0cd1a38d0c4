//! Refusal of ONNX models whose tensors keep their data in external files.
//!
//! An ONNX tensor may say `data_location = EXTERNAL` and name a file (and an
//! offset and length) that holds its bytes. An engine resolves that name on
//! the server's own filesystem, so an uploaded model could read any file the
//! process can (the registry database, another job's request, a service
//! account token) and hand its bytes back as an output. ferroserve serves
//! only self-contained models: every tensor anywhere in the model (graph
//! initializers, sparse initializers, attribute tensors, subgraphs, local
//! functions, training graphs) must keep its data inline.

use prost::Message;
use tract_onnx::pb::{
    tensor_proto::DataLocation, AttributeProto, GraphProto, ModelProto, NodeProto,
    SparseTensorProto, TensorProto,
};

use crate::BackendError;

/// Decodes `bytes` as an ONNX model and refuses it when a tensor uses
/// external data. Bytes that are not a model are left for the engine to
/// refuse with its own message.
pub fn refuse_external_data(bytes: &[u8]) -> Result<(), BackendError> {
    match ModelProto::decode(bytes) {
        Ok(model) => refuse_in_model(&model),
        Err(_) => Ok(()),
    }
}

/// Refuses `model` when any tensor in it uses external data.
pub fn refuse_in_model(model: &ModelProto) -> Result<(), BackendError> {
    match find_in_model(model) {
        None => Ok(()),
        Some(found) => Err(BackendError::Load(format!(
            "the model uses external data: tensor '{}' in {} keeps its bytes in the file '{}'; \
             only self-contained ONNX models are accepted (save the model with all tensors \
             inline, e.g. onnx.save_model(model, path, save_as_external_data=False))",
            found.tensor, found.place, found.file
        ))),
    }
}

/// A tensor that keeps its data outside the model.
#[derive(Debug, PartialEq, Eq)]
struct ExternalTensor {
    /// The tensor's name.
    tensor: String,
    /// Where in the model it is (`graph 'main'`, `node 'If_3' attribute 'then_branch'`...).
    place: String,
    /// The file it names (its `location` entry), or `?` when none.
    file: String,
}

fn find_in_model(model: &ModelProto) -> Option<ExternalTensor> {
    let graphs = model.graph.iter().chain(
        model
            .training_info
            .iter()
            .flat_map(|t| t.initialization.iter().chain(t.algorithm.iter())),
    );
    for graph in graphs {
        if let Some(found) = find_in_graph(graph) {
            return Some(found);
        }
    }
    model.functions.iter().find_map(|function| {
        find_in_nodes(
            &function.node,
            &format!(
                "function '{}'",
                function.name.as_deref().unwrap_or_default()
            ),
        )
    })
}

fn find_in_graph(graph: &GraphProto) -> Option<ExternalTensor> {
    let place = format!("graph '{}'", graph.name);
    graph
        .initializer
        .iter()
        .find_map(|tensor| external(tensor, &place))
        .or_else(|| {
            graph
                .sparse_initializer
                .iter()
                .find_map(|sparse| find_in_sparse(sparse, &place))
        })
        .or_else(|| find_in_nodes(&graph.node, &place))
}

fn find_in_nodes(nodes: &[NodeProto], place: &str) -> Option<ExternalTensor> {
    nodes.iter().find_map(|node| {
        node.attribute.iter().find_map(|attribute| {
            let place = format!(
                "{place}, node '{}' attribute '{}'",
                node.name, attribute.name
            );
            find_in_attribute(attribute, &place)
        })
    })
}

fn find_in_attribute(attribute: &AttributeProto, place: &str) -> Option<ExternalTensor> {
    attribute
        .t
        .iter()
        .chain(&attribute.tensors)
        .find_map(|tensor| external(tensor, place))
        .or_else(|| {
            attribute
                .sparse_tensor
                .iter()
                .chain(&attribute.sparse_tensors)
                .find_map(|sparse| find_in_sparse(sparse, place))
        })
        .or_else(|| {
            attribute
                .g
                .iter()
                .chain(&attribute.graphs)
                .find_map(find_in_graph)
        })
}

fn find_in_sparse(sparse: &SparseTensorProto, place: &str) -> Option<ExternalTensor> {
    sparse
        .values
        .iter()
        .chain(sparse.indices.iter())
        .find_map(|tensor| external(tensor, place))
}

/// The tensor, when it keeps its data outside the model. A tensor with
/// `external_data` entries counts even without the location flag: engines
/// differ in which of the two they look at.
fn external(tensor: &TensorProto, place: &str) -> Option<ExternalTensor> {
    let flagged = tensor.data_location == Some(DataLocation::External as i32);
    if !flagged && tensor.external_data.is_empty() {
        return None;
    }
    let file = tensor
        .external_data
        .iter()
        .find(|entry| entry.key == "location")
        .map_or_else(|| "?".to_owned(), |entry| entry.value.clone());
    Some(ExternalTensor {
        tensor: tensor.name.clone(),
        place: place.to_owned(),
        file,
    })
}

#[cfg(test)]
mod tests {
    use tract_onnx::pb::StringStringEntryProto;

    use super::*;

    fn external_tensor(name: &str, file: &str) -> TensorProto {
        TensorProto {
            name: name.to_owned(),
            data_location: Some(DataLocation::External as i32),
            external_data: vec![StringStringEntryProto {
                key: "location".to_owned(),
                value: file.to_owned(),
            }],
            ..TensorProto::default()
        }
    }

    fn inline_tensor(name: &str) -> TensorProto {
        TensorProto {
            name: name.to_owned(),
            raw_data: vec![1, 2, 3, 4],
            ..TensorProto::default()
        }
    }

    fn model_of(graph: GraphProto) -> ModelProto {
        ModelProto {
            graph: Some(graph),
            ..ModelProto::default()
        }
    }

    fn refused(model: &ModelProto) -> String {
        let bytes = model.encode_to_vec();
        refuse_external_data(&bytes)
            .expect_err("external data must be refused")
            .to_string()
    }

    #[test]
    fn inline_models_pass() {
        let graph = GraphProto {
            name: "main".to_owned(),
            initializer: vec![inline_tensor("w")],
            ..GraphProto::default()
        };
        assert_eq!(
            refuse_external_data(&model_of(graph).encode_to_vec()),
            Ok(())
        );
        // Not a model at all: the engine says so, not this check.
        assert_eq!(refuse_external_data(b"\xff\xff not onnx"), Ok(()));
    }

    #[test]
    fn initializers_are_checked() {
        let graph = GraphProto {
            name: "main".to_owned(),
            initializer: vec![inline_tensor("a"), external_tensor("w", "etc/passwd")],
            ..GraphProto::default()
        };
        let message = refused(&model_of(graph));
        assert!(message.contains("external data"), "{message}");
        assert!(message.contains("'w'"), "{message}");
        assert!(message.contains("etc/passwd"), "{message}");
    }

    #[test]
    fn sparse_initializers_are_checked() {
        let graph = GraphProto {
            sparse_initializer: vec![SparseTensorProto {
                values: Some(external_tensor("values", "data/registry.db")),
                ..SparseTensorProto::default()
            }],
            ..GraphProto::default()
        };
        assert!(refused(&model_of(graph)).contains("data/registry.db"));
    }

    #[test]
    fn attribute_tensors_and_subgraphs_are_checked() {
        let constant = NodeProto {
            name: "c".to_owned(),
            attribute: vec![AttributeProto {
                name: "value".to_owned(),
                t: Some(external_tensor("v", "secret")),
                ..AttributeProto::default()
            }],
            ..NodeProto::default()
        };
        let graph = GraphProto {
            node: vec![constant.clone()],
            ..GraphProto::default()
        };
        assert!(refused(&model_of(graph)).contains("node 'c' attribute 'value'"));

        let branch = GraphProto {
            name: "then".to_owned(),
            initializer: vec![external_tensor("deep", "token")],
            ..GraphProto::default()
        };
        let if_node = NodeProto {
            name: "if".to_owned(),
            attribute: vec![AttributeProto {
                name: "then_branch".to_owned(),
                g: Some(branch),
                ..AttributeProto::default()
            }],
            ..NodeProto::default()
        };
        let graph = GraphProto {
            node: vec![if_node],
            ..GraphProto::default()
        };
        assert!(refused(&model_of(graph)).contains("'deep'"));

        let listed = NodeProto {
            attribute: vec![AttributeProto {
                tensors: vec![inline_tensor("ok"), external_tensor("listed", "f")],
                ..AttributeProto::default()
            }],
            ..NodeProto::default()
        };
        let graph = GraphProto {
            node: vec![listed],
            ..GraphProto::default()
        };
        assert!(refused(&model_of(graph)).contains("'listed'"));
    }

    #[test]
    fn functions_and_external_data_entries_alone_are_checked() {
        let mut unflagged = external_tensor("u", "x");
        unflagged.data_location = None;
        let function = tract_onnx::pb::FunctionProto {
            name: Some("f".to_owned()),
            node: vec![NodeProto {
                attribute: vec![AttributeProto {
                    t: Some(unflagged),
                    ..AttributeProto::default()
                }],
                ..NodeProto::default()
            }],
            ..tract_onnx::pb::FunctionProto::default()
        };
        let model = ModelProto {
            functions: vec![function],
            ..ModelProto::default()
        };
        assert!(refused(&model).contains("function 'f'"));
    }
}
