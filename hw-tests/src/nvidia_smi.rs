//! `nvidia-smi -q -x`: running it and reading count, UUIDs, PCI bus ids and minor numbers.

use gantry_topology::PciBusId;
use std::process::Command;

/// One `<gpu>` of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmiGpu {
    /// `<uuid>`.
    pub uuid: String,
    /// `<pci><pci_bus_id>`, canonical form.
    pub pci_bus_id: PciBusId,
    /// `<minor_number>`; `None` where nvidia-smi prints `N/A` (e.g. on some virtual GPUs).
    pub minor: Option<u32>,
    /// `<product_name>`.
    pub product_name: String,
}

/// Why the report could not be had or read.
#[derive(Debug, thiserror::Error)]
pub enum NvidiaSmiError {
    /// `nvidia-smi` could not be started.
    #[error("cannot run nvidia-smi: {0}")]
    Spawn(#[from] std::io::Error),
    /// `nvidia-smi` exited with an error.
    #[error("nvidia-smi -q -x failed ({status}): {stderr}")]
    Failed {
        /// Exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The XML could not be parsed or lacks a field.
    #[error("unreadable nvidia-smi XML: {0}")]
    Xml(String),
}

/// Runs `nvidia-smi -q -x` and returns its stdout.
pub fn run_nvidia_smi_xml() -> Result<String, NvidiaSmiError> {
    let out = Command::new("nvidia-smi").args(["-q", "-x"]).output()?;
    if !out.status.success() {
        return Err(NvidiaSmiError::Failed {
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    String::from_utf8(out.stdout).map_err(|e| NvidiaSmiError::Xml(e.to_string()))
}

/// Parses the report's `<gpu>` elements in document order.
pub fn parse_nvidia_smi_xml(xml: &str) -> Result<Vec<SmiGpu>, NvidiaSmiError> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(xml, opts)
        .map_err(|e| NvidiaSmiError::Xml(e.to_string()))?;
    let child_text = |node: roxmltree::Node<'_, '_>, name: &str| -> Option<String> {
        node.children()
            .find(|c| c.has_tag_name(name))
            .and_then(|c| c.text())
            .map(|t| t.trim().to_string())
    };
    doc.root_element()
        .children()
        .filter(|n| n.has_tag_name("gpu"))
        .map(|gpu| {
            let missing = |f: &str| NvidiaSmiError::Xml(format!("a <gpu> without <{f}>"));
            let uuid = child_text(gpu, "uuid").ok_or_else(|| missing("uuid"))?;
            let pci_text = gpu
                .children()
                .find(|c| c.has_tag_name("pci"))
                .and_then(|pci| child_text(pci, "pci_bus_id"))
                .ok_or_else(|| missing("pci_bus_id"))?;
            let pci_bus_id = PciBusId::parse(&pci_text)
                .ok_or_else(|| NvidiaSmiError::Xml(format!("bad PCI bus id {pci_text:?}")))?;
            let minor = child_text(gpu, "minor_number").and_then(|m| m.parse().ok());
            let product_name = child_text(gpu, "product_name").unwrap_or_default();
            Ok(SmiGpu {
                uuid,
                pci_bus_id,
                minor,
                product_name,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0" ?>
<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">
<nvidia_smi_log>
  <driver_version>550.54.15</driver_version>
  <attached_gpus>2</attached_gpus>
  <gpu id="00000000:34:00.0">
    <product_name>Tesla V100-SXM3-32GB-H</product_name>
    <uuid>GPU-d3977428-7a30-086b-2e20-5c1eeed647c6</uuid>
    <minor_number>0</minor_number>
    <pci><pci_bus>34</pci_bus><pci_bus_id>00000000:34:00.0</pci_bus_id></pci>
  </gpu>
  <gpu id="00000000:36:00.0">
    <product_name>Tesla V100-SXM3-32GB-H</product_name>
    <uuid>GPU-5bfda7ef-6aec-a775-5ae1-a1c3dcaef094</uuid>
    <minor_number>N/A</minor_number>
    <pci><pci_bus_id>00000000:36:00.0</pci_bus_id></pci>
  </gpu>
</nvidia_smi_log>"#;

    #[test]
    fn parses_uuids_pci_ids_and_minors() {
        let gpus = parse_nvidia_smi_xml(SAMPLE).expect("parse");
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].uuid, "GPU-d3977428-7a30-086b-2e20-5c1eeed647c6");
        assert_eq!(gpus[0].pci_bus_id.as_str(), "0000:34:00.0");
        assert_eq!(gpus[0].minor, Some(0));
        assert_eq!(gpus[1].minor, None);
        assert_eq!(gpus[1].product_name, "Tesla V100-SXM3-32GB-H");
    }

    #[test]
    fn a_gpu_without_uuid_is_an_error() {
        let xml = "<nvidia_smi_log><gpu><pci><pci_bus_id>0:1:0.0</pci_bus_id></pci></gpu></nvidia_smi_log>";
        let err = parse_nvidia_smi_xml(xml).expect_err("no uuid");
        assert!(err.to_string().contains("<uuid>"), "{err}");
    }
}
