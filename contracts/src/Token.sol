// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {ERC20} from "./ERC20.sol";

/// @title Token
/// @notice BENCHMARK TOKEN — NOT FOR REAL VALUE. A plain 18-decimal ERC-20 whose
/// `mint` is open to anyone, so benchmark set-up can fund any account without an
/// owner key. Deploy with no constructor arguments; the initial supply is zero.
contract Token is ERC20 {
    string public constant name = "Parevm Bench Token";
    string public constant symbol = "PBT";
    uint8 public constant decimals = 18;

    /// @notice Mints `amount` new tokens to `to`. Unrestricted on purpose (benchmark only).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
