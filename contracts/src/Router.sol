// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IERC20} from "./IERC20.sol";
import {Pair} from "./Pair.sol";

/// @title Router
/// @notice Stateless helper that moves the caller's tokens into a Pair and then calls
/// the pair's low-level `swap`, `mint` or `burn`. Callers approve the router on the
/// tokens they spend (and on the pair's LP share for `removeLiquidity`).
contract Router {
    error InsufficientOutputAmount(uint256 amountOut, uint256 amountOutMin);
    error InsufficientInputAmount();
    error InsufficientLiquidity();
    error InvalidToken();
    error TransferFailed();

    /// @notice Swaps exactly `amountIn` of `tokenIn` for the pair's other token, sent to `to`.
    function swapExactTokensForTokens(
        uint256 amountIn,
        uint256 amountOutMin,
        address pair,
        address tokenIn,
        address to
    ) external returns (uint256 amountOut) {
        (uint112 reserve0, uint112 reserve1,) = Pair(pair).getReserves();
        bool zeroForOne;
        if (tokenIn == Pair(pair).token0()) {
            zeroForOne = true;
        } else if (tokenIn != Pair(pair).token1()) {
            revert InvalidToken();
        }

        amountOut = zeroForOne ? getAmountOut(amountIn, reserve0, reserve1) : getAmountOut(amountIn, reserve1, reserve0);
        if (amountOut < amountOutMin) revert InsufficientOutputAmount(amountOut, amountOutMin);

        _safeTransferFrom(tokenIn, msg.sender, pair, amountIn);
        if (zeroForOne) {
            Pair(pair).swap(0, amountOut, to);
        } else {
            Pair(pair).swap(amountOut, 0, to);
        }
    }

    /// @notice Deposits up to `amount0Desired` of token0 and `amount1Desired` of token1
    /// at the pool's current ratio (or exactly, for an empty pool) and mints LP shares to `to`.
    function addLiquidity(address pair, uint256 amount0Desired, uint256 amount1Desired, address to)
        external
        returns (uint256 amount0, uint256 amount1, uint256 liquidity)
    {
        (uint112 reserve0, uint112 reserve1,) = Pair(pair).getReserves();
        if (reserve0 == 0 && reserve1 == 0) {
            (amount0, amount1) = (amount0Desired, amount1Desired);
        } else {
            uint256 amount1Optimal = quote(amount0Desired, reserve0, reserve1);
            if (amount1Optimal <= amount1Desired) {
                (amount0, amount1) = (amount0Desired, amount1Optimal);
            } else {
                (amount0, amount1) = (quote(amount1Desired, reserve1, reserve0), amount1Desired);
            }
        }

        _safeTransferFrom(Pair(pair).token0(), msg.sender, pair, amount0);
        _safeTransferFrom(Pair(pair).token1(), msg.sender, pair, amount1);
        liquidity = Pair(pair).mint(to);
    }

    /// @notice Burns `liquidity` LP shares of the caller and sends the underlying tokens to `to`.
    function removeLiquidity(address pair, uint256 liquidity, address to)
        external
        returns (uint256 amount0, uint256 amount1)
    {
        _safeTransferFrom(pair, msg.sender, pair, liquidity);
        (amount0, amount1) = Pair(pair).burn(to);
    }

    /// @notice Output for an exact input after the pair's 0.3% fee.
    function getAmountOut(uint256 amountIn, uint256 reserveIn, uint256 reserveOut)
        public
        pure
        returns (uint256 amountOut)
    {
        if (amountIn == 0) revert InsufficientInputAmount();
        if (reserveIn == 0 || reserveOut == 0) revert InsufficientLiquidity();
        uint256 amountInWithFee = amountIn * 997;
        amountOut = (amountInWithFee * reserveOut) / (reserveIn * 1000 + amountInWithFee);
    }

    /// @notice `amountA` expressed in the other token at the ratio reserveB / reserveA.
    function quote(uint256 amountA, uint256 reserveA, uint256 reserveB) public pure returns (uint256 amountB) {
        if (amountA == 0) revert InsufficientInputAmount();
        if (reserveA == 0 || reserveB == 0) revert InsufficientLiquidity();
        amountB = (amountA * reserveB) / reserveA;
    }

    function _safeTransferFrom(address token, address from, address to, uint256 amount) private {
        if (!IERC20(token).transferFrom(from, to, amount)) revert TransferFailed();
    }
}
