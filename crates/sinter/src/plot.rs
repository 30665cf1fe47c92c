//! The demo's loss curve as a PNG, drawn with `plotters`.
//!
//! The font (DejaVu Sans Mono, `data/fonts/`) is embedded and registered with plotters'
//! `ab_glyph` text backend, so drawing needs no system fonts or fontconfig.

use plotters::prelude::*;
use std::path::Path;

const FONT: &[u8] = include_bytes!("../../../data/fonts/DejaVuSansMono.ttf");

/// Writes a `width x height` PNG at `path`: the loss of every training step (thin) and its
/// moving average over `window` steps (thick), `title` above.
pub fn loss_curve(
    path: &Path,
    title: &str,
    losses: &[f32],
    window: usize,
    (width, height): (u32, u32),
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    if losses.is_empty() {
        return Err(err(&"no losses to plot"));
    }
    // Registering twice replaces the same bytes: harmless.
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| err(&"the embedded font does not parse"))?;
    let finite: Vec<f32> = losses.iter().copied().filter(|l| l.is_finite()).collect();
    let top = finite.iter().copied().fold(0.0f32, f32::max).max(1e-3) * 1.05;
    let window = window.max(1);
    let smooth: Vec<(f32, f32)> = (0..losses.len())
        .map(|i| {
            let lo = (i + 1).saturating_sub(window);
            let w = &losses[lo..=i];
            (i as f32, w.iter().sum::<f32>() / w.len() as f32)
        })
        .collect();
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0f32..losses.len() as f32, 0f32..top)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("training step")
        .y_desc("loss")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(
            losses.iter().enumerate().map(|(i, &l)| (i as f32, l)),
            RGBColor(150, 180, 230).stroke_width(1),
        ))
        .map_err(|e| err(&e))?
        .label("per step")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RGBColor(150, 180, 230)));
    chart
        .draw_series(LineSeries::new(smooth, BLUE.stroke_width(2)))
        .map_err(|e| err(&e))?
        .label(format!("mean of {window}"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE.stroke_width(2)));
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The PNG decodes to the asked size, has drawn (non-white) pixels, and an empty curve is
    /// an error.
    #[test]
    fn writes_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        let losses: Vec<f32> = (0..200).map(|i| 2.3 * (-(i as f32) / 50.0).exp()).collect();
        super::loss_curve(&path, "test", &losses, 10, (320, 200)).unwrap();
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (320, 200));
        let drawn = buf.chunks(3).filter(|p| p.iter().any(|&c| c < 200)).count();
        assert!(drawn > 500, "{drawn} drawn pixels");
        assert!(super::loss_curve(&path, "t", &[], 1, (10, 10)).is_err());
    }
}
