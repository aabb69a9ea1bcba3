"""Wideband lambda sensor: transport delay, lag, noise and range.

A wideband reading lags the cylinder it watches in two ways. Exhaust gas
needs time to travel from the exhaust valve to the sensor, a transport
delay that shrinks as exhaust flow grows, and the sensor and its
controller smooth the signal with roughly a first-order lag. On top sit
measurement noise of about 1 % of lambda, an optional fixed bias, the
controller's output range, and a warm-up during which the controller
reports 0 or its rail value.

:func:`transport_delay` is the same model analysis code can use to
shift logged AFR back onto the engine state that produced it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

logger = logging.getLogger(__name__)

#: Sensor and controller dead time added to the gas travel time [s].
DEAD_TIME = 0.08
#: Exhaust-to-intake gas volume ratio: hot exhaust occupies more volume
#: than the charge it came from, times a nominal VE [1]. An estimate.
EXHAUST_VOLUME_RATIO = 2.5
#: Delay range the model is clipped to [s].
DELAY_RANGE = (0.05, 1.0)
#: Reference pressure that normalises MAP in the flow estimate [kPa].
_REFERENCE_KPA = 101.325


def transport_delay(engine, rpm, map_kpa) -> np.ndarray:
    """Compute the delay from exhaust valve to wideband reading.

    Parameters
    ----------
    engine : dynoai_lab.sim.engines.Engine
        Engine parameter set; uses ``cylinder_volume`` [m³] and
        ``exhaust_delay_volume`` [m³].
    rpm : array_like
        Engine speed [rpm].
    map_kpa : array_like
        Manifold absolute pressure [kPa].

    Returns
    -------
    numpy.ndarray
        Transport delay [s], see :func:`exhaust_transport_delay`.
    """
    ratio = engine.exhaust_delay_volume / engine.cylinder_volume
    return exhaust_transport_delay(rpm, map_kpa, volume_ratio=ratio)


def exhaust_transport_delay(rpm, map_kpa, volume_ratio=3.2) -> np.ndarray:
    """Compute the delay from exhaust valve to wideband reading.

    Parameters
    ----------
    rpm : array_like
        Engine speed [rpm].
    map_kpa : array_like
        Manifold absolute pressure [kPa].
    volume_ratio : float
        Effective exhaust volume up to the sensor over one cylinder's
        swept volume, ``V_exh / V_cyl`` [1].

    Returns
    -------
    numpy.ndarray
        Transport delay [s], clipped to 0.05 to 1.0 s.

    Notes
    -----
    One cylinder's exhaust volume flow is estimated as

    .. math:: Q = V_{cyl} \\frac{n}{120} \\frac{p_{MAP}}{101.325}
              \\, k_{exh}

    with :math:`k_{exh}` = 2.5, and the delay is a plug-flow travel
    time through the effective volume :math:`V_{exh}` plus a dead
    time :math:`t_0` = 0.08 s:

    .. math:: t_d = t_0 + \\frac{V_{exh}}{Q}

    The cylinder volume cancels, so only the ratio
    :math:`V_{exh} / V_{cyl}` enters. With 3.2 this gives about 0.6 s
    at 1000 rpm and 30 kPa, 0.18 s at 3000 rpm and 50 kPa, and 0.11 s
    at 5500 rpm and 100 kPa. The constants are estimates chosen to
    match the 0.05 to 1 s range and the 0.4 to 1 s measured on real
    exhausts at low flow. The effective volume is larger than the
    header's geometric volume because gas mixes along the pipe. The
    simulator and the analysis use this one model, so a simulated
    session tests everything but the delay estimate itself.
    """
    delay = DEAD_TIME + plug_flow_time(rpm, map_kpa, volume_ratio)
    return np.clip(delay, *DELAY_RANGE)


def plug_flow_time(rpm, map_kpa, volume_ratio=3.2) -> np.ndarray:
    """Travel time through the exhaust volume up to the sensor [s].

    The part of :func:`exhaust_transport_delay` before its dead time
    and clipping; it is proportional to `volume_ratio` [1]. Engine
    speed [rpm] below 100 and MAP [kPa] below 1 count as those values.
    """
    rpm = np.maximum(np.asarray(rpm, float), 100.0)
    map_kpa = np.maximum(np.asarray(map_kpa, float), 1.0)
    flow_per_volume = (
        (rpm / 120.0) * (map_kpa / _REFERENCE_KPA) * EXHAUST_VOLUME_RATIO
    )
    return volume_ratio / flow_per_volume


def delayed_signal(time, signal, delay) -> np.ndarray:
    """Return `signal` as a sensor sees it after a transport delay.

    Parameters
    ----------
    time : array_like
        Increasing sample times [s].
    signal : array_like
        Values at `time`, as the gas leaves the cylinder.
    delay : array_like
        Delay of the gas that leaves at each sample [s], may vary.

    Returns
    -------
    numpy.ndarray
        Gas that leaves at :math:`t` arrives at :math:`a(t) = t +
        t_d(t)`; the output at time :math:`s` is the signal of the gas
        arriving then, by linear interpolation over the arrival times.
        Arrival times are made non-decreasing (later gas cannot
        overtake earlier gas), and before the first arrival the first
        value is held. This is the inverse of the shift that
        :func:`dynoai_lab.analysis.wideband.align_to_operating_point`
        applies with the same delay.
    """
    time = np.asarray(time, float)
    arrival = np.maximum.accumulate(time + np.asarray(delay, float))
    return np.interp(time, arrival, np.asarray(signal, float))


def first_order_lag(signal, step, time_constant) -> np.ndarray:
    """Filter a uniformly sampled signal through a first-order lag.

    Parameters
    ----------
    signal : array_like
        Input samples at a fixed step.
    step : float
        Sample step [s].
    time_constant : float
        Lag time constant [s]; 0 returns the input unchanged.

    Returns
    -------
    numpy.ndarray
        Output, starting settled at the first input value.

    Notes
    -----
    Exact discretisation for piecewise-constant input:

    .. math:: y_k = y_{k-1} + (1 - e^{-\\Delta t/\\tau})(x_k - y_{k-1})
    """
    x = np.asarray(signal, float)
    if time_constant <= 0.0 or x.size == 0:
        return x.copy()
    gain = 1.0 - np.exp(-step / time_constant)
    initial = np.array([(1.0 - gain) * x[0]])
    y, _ = lfilter([gain], [1.0, -(1.0 - gain)], x, zi=initial)
    return y


@dataclass(frozen=True)
class WidebandSensor:
    """Wideband sensor and controller, Bosch LSU 4.9 class.

    Attributes
    ----------
    time_constant : float
        First-order lag of sensor and controller [s].
    noise_fraction : float
        Standard deviation of Gaussian noise relative to lambda [1].
    lambda_min, lambda_max : float
        Output range [1]. An LSU 4.9 reads down to lambda 0.65; many
        controllers rail on the lean side, for example an Innovate
        LC-2 at AFR 22.39 (lambda 1.52); 1.6 is used here.
    stoichiometric_afr : float
        AFR the controller reports for lambda 1 [1].
    warmup_s : float
        Time from the start of a plan during which the heater warms the
        sensor and the controller reports no measurement [s]; real
        controllers take about 10 to 30 s. 0 for a sensor already warm.
    warmup_reading : {"zero", "rail"}
        What the controller reports during warm-up: 0, or its lean rail
        `lambda_max`.
    bias : float
        Fixed relative error of the reading [1], for example 0.01 for a
        sensor that reads 1 % lean (a ground offset or a worn cell).
    delay_scale : float
        Factor on the engine's exhaust volume up to the sensor [1]: 1
        for a bung in the header, where the delay is 0.1 to 0.6 s, and
        4 for a sensor far downstream or a tailpipe probe, where most
        part-load points see 0.4 to 1 s. The delay keeps its shape,
        :func:`exhaust_transport_delay` with the volume scaled, and
        stays clipped to 0.05 to 1 s.
    """

    time_constant: float = 0.1
    noise_fraction: float = 0.01
    lambda_min: float = 0.65
    lambda_max: float = 1.6
    stoichiometric_afr: float = 14.7
    warmup_s: float = 0.0
    warmup_reading: str = "zero"
    bias: float = 0.0
    delay_scale: float = 1.0

    def __post_init__(self):
        if self.warmup_reading not in ("zero", "rail"):
            raise ValueError(
                "warmup_reading must be 'zero' or 'rail', got "
                f"{self.warmup_reading!r}"
            )
        if self.time_constant < 0.0 or self.warmup_s < 0.0:
            raise ValueError(
                "time_constant and warmup_s must be >= 0 s, got "
                f"{self.time_constant!r} and {self.warmup_s!r}"
            )
        if not 0.0 < self.delay_scale <= 20.0:
            raise ValueError(
                "delay_scale must be above 0 and at most 20, got "
                f"{self.delay_scale!r}"
            )
        if not -0.2 < self.bias < 0.2:
            raise ValueError(
                f"bias must be a fraction between -0.2 and 0.2, got "
                f"{self.bias!r}; 0.01 reads 1 % lean"
            )

    def respond(self, time, lambda_actual, delay, step) -> np.ndarray:
        """Apply transport delay and lag to burned lambda [1].

        `time` [s] is a uniform grid with spacing `step` [s] and `delay`
        [s] the transport delay at each point. Returns noise-free
        lambda [1] at the sensor.
        """
        seen = delayed_signal(time, lambda_actual, delay)
        return first_order_lag(seen, step, self.time_constant)

    def read(
        self, lambda_sensor, rng: np.random.Generator, time=None
    ) -> np.ndarray:
        """Turn lambda at the sensor [1] into the controller's output [1].

        Adds Gaussian noise of ``noise_fraction`` times lambda, applies
        the bias, clips to the output range and, where `time` [s] from
        the start of the plan is before ``warmup_s``, reports the
        warm-up value instead. Draws one normal number per sample from
        `rng`, warm-up or not, so the noise does not depend on it.
        """
        lam = np.asarray(lambda_sensor, float)
        noise = rng.standard_normal(lam.shape) * self.noise_fraction * lam
        reading = np.clip(
            (lam + noise) * (1.0 + self.bias),
            self.lambda_min,
            self.lambda_max,
        )
        if time is not None and self.warmup_s > 0.0:
            cold = np.asarray(time, float) < self.warmup_s
            value = 0.0 if self.warmup_reading == "zero" else self.lambda_max
            reading = np.where(cold, value, reading)
        return reading


#: The wideband of a realistic installation and the default of
#: closed-loop tuning sessions. The sensor sits downstream in the
#: exhaust, so the transport delay is 0.4 to 1 s at most part-load
#: points and about 0.2 s at wide-open throttle near peak power. Lag
#: (0.1 s) and noise (1 %) are those of :class:`WidebandSensor`. Over
#: the m8-114's held VE cells the delay has a median of 0.68 s and is
#: between 0.4 and 1 s in 81 % of them.
REALISTIC_SENSOR = WidebandSensor(delay_scale=5.0)
