//! Learning-rate schedules, computed on the host.
//!
//! The training graph takes the learning rate as an `f32[]` input, so a schedule never
//! changes the compiled step: the [`Trainer`](crate::Trainer) asks the schedule for the rate
//! of each step and feeds it.

/// The learning rate as a function of the step number (from 0).
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// The same rate every step.
    Constant(f32),
    /// `base * gamma^(step / every)` (integer division): decays by `gamma` every `every` steps.
    Step {
        /// The initial rate.
        base: f32,
        /// The factor applied at each decay.
        gamma: f32,
        /// Steps between decays (at least 1).
        every: u64,
    },
    /// Cosine annealing from `base` at step 0 to `min` at step `steps`, then `min`:
    /// `min + (base - min) (1 + cos(pi step / steps)) / 2`.
    Cosine {
        /// The initial rate.
        base: f32,
        /// The final rate.
        min: f32,
        /// The length of the decay.
        steps: u64,
    },
    /// Linear warm-up over `steps` steps to the rate `then` starts with, after which `then`
    /// runs from its own step 0: step `s < steps` gets `then(0) * (s + 1) / steps`.
    Warmup {
        /// The warm-up length.
        steps: u64,
        /// The schedule after warm-up.
        then: Box<Schedule>,
    },
}

impl Schedule {
    /// The rate of step `step`.
    pub fn lr(&self, step: u64) -> f32 {
        match self {
            Schedule::Constant(lr) => *lr,
            Schedule::Step { base, gamma, every } => {
                base * gamma.powi((step / (*every).max(1)).min(i32::MAX as u64) as i32)
            }
            Schedule::Cosine { base, min, steps } => {
                if step >= *steps {
                    return *min;
                }
                let f = step as f64 / *steps as f64;
                let c = (1.0 + (std::f64::consts::PI * f).cos()) / 2.0;
                (*min as f64 + (*base as f64 - *min as f64) * c) as f32
            }
            Schedule::Warmup { steps, then } => {
                if step < *steps {
                    then.lr(0) * (step + 1) as f32 / *steps as f32
                } else {
                    then.lr(step - steps)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert_eq!(Schedule::Constant(0.1).lr(99), 0.1);
        let s = Schedule::Step {
            base: 1.0,
            gamma: 0.5,
            every: 10,
        };
        assert_eq!(
            (s.lr(0), s.lr(9), s.lr(10), s.lr(25)),
            (1.0, 1.0, 0.5, 0.25)
        );
        let c = Schedule::Cosine {
            base: 1.0,
            min: 0.0,
            steps: 100,
        };
        assert_eq!(c.lr(0), 1.0);
        assert!((c.lr(50) - 0.5).abs() < 1e-6);
        assert_eq!(c.lr(100), 0.0);
        let w = Schedule::Warmup {
            steps: 4,
            then: Box::new(Schedule::Constant(0.8)),
        };
        assert_eq!((w.lr(0), w.lr(3), w.lr(4)), (0.2, 0.8, 0.8));
    }
}
