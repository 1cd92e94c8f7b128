//! Slurm as the peer of Gantry's one-off job throughput: n trivial jobs (`true`) on one node from
//! submit to all finished, as jobs/s, on a private one-node Slurm (Debian's `slurm-wlm`, default
//! configuration; see support/slurm.rs), submitted as n sequential `sbatch --wrap=true` calls and
//! as one `sbatch --array=1-n --wrap=true`. n is `GANTRY_BENCH_JOBS` (default 1000).
//! Run (as root, with `apt-get install -y slurm-wlm munge`):
//! `cargo bench -p gantry-cli --bench slurm_peer`

mod support;

use support::slurm::{SlurmCluster, Submit};

fn main() -> anyhow::Result<()> {
    let jobs: usize = match std::env::var("GANTRY_BENCH_JOBS") {
        Ok(v) => v
            .parse()
            .map_err(|e| anyhow::anyhow!("GANTRY_BENCH_JOBS={v:?}: {e}"))?,
        Err(_) => 1000,
    };
    let mut slurm = SlurmCluster::start()?;
    // "slurm-wlm 22.05.8" -> "slurm 22.05.8"
    let version = slurm.version.replace("slurm-wlm", "slurm");
    println!(
        "{version} on one node (SchedulerType={}, SelectType={}, SelectTypeParameters={})",
        slurm.config_value("SchedulerType")?,
        slurm.config_value("SelectType")?,
        slurm.config_value("SelectTypeParameters")?,
    );
    for how in [Submit::Sequential, Submit::Array] {
        let t = slurm.submit_and_wait(jobs, how)?;
        println!(
            "{version}: {jobs} jobs ({}): submit {:.1} s, all finished {:.1} s, {:.1} jobs/s",
            how.describe(),
            t.submit.as_secs_f64(),
            t.total.as_secs_f64(),
            t.jobs_per_s(),
        );
    }
    Ok(())
}
